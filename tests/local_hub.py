"""A local Hugging Face hub for tests: the published repositories' file trees, served on 127.0.0.1 to the real
``huggingface_hub`` client (``HF_ENDPOINT``).

What it serves, as the hub does (the endpoints huggingface_hub 2.x calls):
  GET  /api/models/<repo>[/revision/<rev>]         repo info (sha, siblings, gated) at a branch head or commit
  GET  /api/models/<repo>/tree/<rev>[/<path>]      the file listing (one page)
  HEAD|GET /<repo>/resolve/<rev>/<path>            a file, with X-Repo-Commit and ETag
Gated repositories (``gated: true`` in hub_trees.json) list their files but answer a download with 401 (no
token) or 403 (a token not granted access) and ``X-Error-Code: GatedRepo``, so the client raises its
GatedRepoError. A file's bytes are the twin's where the twin has that component (same folder and file name, or
the twin's weights of that component when only the variant name differs), and a placeholder elsewhere — a
placeholder can never load, so a test that loads from the snapshot proves only needed files were picked.
"""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "a" * 40
REFERENCE = Path(__file__).resolve().parent / "reference" / "hub_trees.json"


def load_trees(path: Path = REFERENCE) -> dict:
    return json.loads(path.read_text())["repos"]


def _weight(name: str) -> bool:
    return name.endswith((".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".onnx"))


class Hub:
    """``repos``: {repo: {"files": [paths], "gated": bool}}; ``twins``: {repo: twin folder};
    ``aliases``: {repo: {published folder: twin folder}} (e.g. shap-e's ``renderer/`` holds what the twin
    keeps in ``shap_e_renderer/``); ``tokens``: tokens granted access to the gated repos."""

    def __init__(self, repos: dict, twins: dict | None = None, aliases: dict | None = None, tokens=()):
        self.repos, self.twins, self.aliases, self.tokens = repos, twins or {}, aliases or {}, set(tokens)
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for assertions
        self.server = None
        # commits: {repo: {commit: files}} beyond the default one (COMMIT, the listing above); heads: {repo: the
        # commit 'main' points at}. A test moves main to show that a load keeps the commit it resolved first.
        self.commits: dict[str, dict[str, list[str]]] = {}
        self.heads: dict[str, str] = {}

    def commit_of(self, repo: str, rev: str | None) -> str | None:
        """The commit a revision names (a branch head or a commit the repo has), else None."""
        if rev in (None, "main"):
            return self.heads.get(repo, COMMIT)
        if repo not in self.commits:  # a repository served at one commit answers to any pinned one
            return rev
        return rev if rev == COMMIT or rev in self.commits[repo] else None

    def files(self, repo: str, commit: str) -> list[str]:
        return self.commits.get(repo, {}).get(commit, self.repos[repo]["files"])

    # ---------------------------------------------------------------------------------------- content
    def content(self, repo: str, path: str) -> bytes:
        twin = self.twins.get(repo)
        if twin is not None:
            folder, _, name = path.rpartition("/")
            folder = self.aliases.get(repo, {}).get(folder, folder)
            here = Path(twin) / folder if folder else Path(twin)
            if (here / name).is_file():
                return (here / name).read_bytes()
            if _weight(name) and here.is_dir():  # the same component under another variant's name
                ext = "." + name.rsplit(".", 1)[-1]
                same = sorted(p for p in here.iterdir() if p.name.endswith(ext) and p.name.split(".")[0]
                              == name.split(".")[0].split("-0")[0])
                if same:
                    return same[0].read_bytes()
        return f"placeholder for {repo}/{path}: not a file any loader should read\n".encode()

    def listing(self, repo: str, commit: str = COMMIT) -> list[dict]:
        return [{"type": "file", "path": p, "size": len(self.content(repo, p)),
                 "oid": hashlib.sha1(f"{repo}/{p}".encode()).hexdigest()} for p in self.files(repo, commit)]

    # ---------------------------------------------------------------------------------------- server
    def __enter__(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, body=b"", headers=None, head=False):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, obj, head=False):
                self._send(200, json.dumps(obj).encode(), {"Content-Type": "application/json"}, head)

            def _error(self, code, error_code, message, head=False):
                self._send(code, json.dumps({"error": message}).encode(),
                           {"X-Error-Code": error_code, "X-Error-Message": message,
                            "Content-Type": "application/json"}, head)

            def handle_one(self, head):
                url = urlparse(self.path)
                path = unquote(url.path)
                hub.requests.append((self.command, path))
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"]:
                    repo = "/".join(parts[2:4])
                    if repo not in hub.repos:
                        return self._error(404, "RepoNotFound", "Repository not found", head)
                    rest = parts[4:]
                    commit = hub.commit_of(repo, rest[1] if rest[:1] in (["tree"], ["revision"]) else None)
                    if commit is None:
                        return self._error(404, "RevisionNotFound", "Invalid rev id", head)
                    if rest[:1] == ["tree"]:
                        prefix = "/".join(rest[2:])
                        items = [i for i in hub.listing(repo, commit) if i["path"].startswith(prefix)]
                        return self._json(items, head)
                    gated = "manual" if hub.repos[repo].get("gated") else False
                    return self._json({"id": repo, "modelId": repo, "sha": commit, "private": False, "gated": gated,
                                       "siblings": [{"rfilename": p} for p in hub.files(repo, commit)]}, head)
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, file = "/".join(parts[:2]), "/".join(parts[4:])
                    if repo not in hub.repos:
                        return self._error(404, "RepoNotFound", "Repository not found", head)
                    if hub.repos[repo].get("gated"):
                        auth = self.headers.get("Authorization", "")
                        token = auth.removeprefix("Bearer ").strip()
                        if not token:
                            return self._error(401, "GatedRepo", "Access to this model is restricted: log in", head)
                        if token not in hub.tokens:
                            return self._error(403, "GatedRepo", "You are not in the authorized list", head)
                    commit = hub.commit_of(repo, parts[3])
                    if commit is None:
                        return self._error(404, "RevisionNotFound", "Invalid rev id", head)
                    if file not in hub.files(repo, commit):
                        return self._error(404, "EntryNotFound", f"{file} does not exist", head)
                    body = hub.content(repo, file)
                    etag = hashlib.sha256(body).hexdigest()
                    return self._send(200, body, {"X-Repo-Commit": commit, "ETag": f'"{etag}"',
                                                  "Content-Type": "application/octet-stream"}, head)
                return self._error(404, "EntryNotFound", "unknown route", head)

            def do_GET(self):
                self.handle_one(head=False)

            def do_HEAD(self):
                self.handle_one(head=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def point_client(self, monkeypatch, hub_cache) -> None:
        """The real huggingface_hub client, online, talking to this hub with the cache ``hub_cache`` and no
        token (for the rest of the test)."""
        import huggingface_hub.constants as c

        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(c, "ENDPOINT", self.url)
        monkeypatch.setattr(c, "HUGGINGFACE_CO_URL_TEMPLATE", self.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(c, "HF_HUB_CACHE", str(hub_cache))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
