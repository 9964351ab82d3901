"""Files fetched outside the model hub (OpenAI's CDN for DALL·E's dVAE, Dropbox for MVDiffusion's checkpoint):
over https only, redirects included (urllib alone would follow one to plain http), hashed on the way, written to a
``.part`` file that becomes the target only once complete (nothing half-written is left behind)."""
from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path


class _HttpsOnly(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to another https:// address."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not newurl.lower().startswith("https://"):
            raise ValueError(f"{req.full_url} redirects to {newurl}, which is not https: refusing to download")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def https_download(url: str, target: Path) -> str:
    """Download ``url`` to ``target`` with a progress bar; returns the file's SHA-256. ValueError for an address
    or a redirect that is not https; the network's own errors (OSError) pass through, with no file left."""
    from tqdm.auto import tqdm

    if not url.lower().startswith("https://"):
        raise ValueError(f"{url} is not an https address: refusing to download")
    target = Path(target)
    part, digest = target.with_name(target.name + ".part"), hashlib.sha256()
    try:
        with urllib.request.build_opener(_HttpsOnly).open(url, timeout=60) as r, open(part, "wb") as f:
            bar = tqdm(total=int(r.headers.get("Content-Length") or 0), unit="B", unit_scale=True, desc=target.name)
            while chunk := r.read(1 << 22):
                f.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
            bar.close()
        part.rename(target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return digest.hexdigest()
