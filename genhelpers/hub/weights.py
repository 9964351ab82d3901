"""Model reference -> local folder of weights.

Tried in this order, first hit wins:
  1. ``tiny:<key>``        the offline random-weight twin (built on first use, cached; the twins register how
                           these resolve, see ``register_twins``)
  2. an existing folder    used as it is
  3. the Kaggle input mount, ``/kaggle/input`` (override with GENHELPERS_KAGGLE_INPUT): an attached dataset or
     model whose slug is the repository name, e.g. ``stable-diffusion-xl-base-1-0``, in either mount layout
     (``datasets/<owner>/<slug>/``, ``models/<owner>/<model>/<framework>/<variation>/<version>/``, or the older
     ``<slug>/``)
  4. kagglehub, for ``kaggle:<handle>`` references or catalog entries with a known Kaggle handle
  5. the Hugging Face hub via huggingface_hub (its cache; no network when HF_HUB_OFFLINE=1)
A miss raises WeightsNotFound listing every way to provide the weights. Nothing here loads a model.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..platform.folders import _newest_first, kaggle_input_root, kaggle_inputs
from . import catalog

SAFE = ".safetensors"
PICKLE = (".bin", ".ckpt", ".pt", ".pth")
WEIGHT_FILES = (SAFE, *PICKLE)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w.-]+)?$")  # '@<commit>' pins a revision


class WeightsNotFound(FileNotFoundError):
    pass


# How ``tiny:<name>`` references resolve. The twins register themselves (genhelpers.twins, imported by the
# package), so this module — the real loading path — knows nothing of them and imports nothing of theirs.
_TWINS: dict = {}


def register_twins(names, build) -> None:
    """``names()``: the twin names there are; ``build(name)``: the folder of that twin (built if needed)."""
    _TWINS.update(names=names, build=build)


def twin_folder(name: str) -> Path:
    """The folder of twin ``name`` (``tiny:<name>``), built on first use by whoever registered the twins."""
    if not _TWINS:
        raise ValueError(f"'tiny:{name}' needs the twins: import genhelpers (which registers them) first")
    return _TWINS["build"](name)


def split_revision(ref: str) -> tuple[str, str | None]:
    """'owner/name@<commit>' -> ('owner/name', '<commit>'); a reference without '@' has no revision."""
    name, _, revision = str(ref).partition("@")
    return name, (revision or None)


@dataclass(frozen=True)
class Resolved:
    ref: str
    path: Path
    source: str  # "tiny" | "path" | "kaggle-input" | "kagglehub" | "hf-hub"
    entry: catalog.Entry | None = None
    revision: str | None = None  # the hub commit the files come from (hf-hub only)

    def variants(self) -> set[str]:
        """File-name variants present in the folder (``fp16`` for ``*.fp16.safetensors``)."""
        found = set()
        for f in self.path.rglob("*" + SAFE):
            parts = f.name.split(".")
            if len(parts) >= 3:
                found.add(parts[-2])
        return found


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def kind_of(ref) -> str:
    """Classify a reference without touching the disk beyond one existence check. Raises ValueError for a
    reference that cannot name a model, so a typo is caught before anything loads."""
    if not isinstance(ref, (str, os.PathLike)) or not str(ref).strip():
        raise ValueError(f"model reference {ref!r} is empty: give a hub id such as "
                         f"'stabilityai/stable-diffusion-xl-base-1.0', a local folder, or 'tiny:sdxl-base'")
    ref = str(ref)
    if ref.startswith("tiny:"):
        names = sorted(_TWINS["names"]()) if _TWINS else []
        if ref[5:] not in names:
            raise ValueError(f"model={ref!r}: no tiny twin by that name; choose one of "
                             + ", ".join(f"'tiny:{k}'" for k in names))
        return "tiny"
    if ref.startswith("kaggle:"):
        kaggle_handle(ref)
        return "kaggle"
    if Path(ref).expanduser().is_dir():
        return "path"
    if ref.startswith(("/", "./", "../", "~")):
        raise ValueError(f"model={ref!r} looks like a folder but it does not exist; check the path "
                         f"(it must be a diffusers folder with model_index.json or config.json)")
    if catalog.find(ref):
        return "catalog"
    if HUB_ID.match(ref):
        return "hub"
    known = ", ".join(sorted(catalog.ENTRIES))
    raise ValueError(f"model={ref!r} is not a model reference genhelpers knows: use a catalog key ({known}), "
                     f"a Hugging Face id 'owner/name', a local folder, 'kaggle:<handle>' or 'tiny:<key>'")


def names_by_folder(paths) -> dict[str, list[str]]:
    """{folder ('' for the top): file names} for relative paths at most one folder deep."""
    out: dict[str, list[str]] = {}
    for p in paths:
        folder, _, name = str(p).rpartition("/")
        if "/" not in folder:
            out.setdefault(folder, []).append(name)
    return out


def pickle_only_parts(names_by_folder: dict[str, list[str]]) -> list[str]:
    """The folders (components) whose weight files are all pickles: {folder: file names} -> folder names."""
    out = []
    for folder, names in names_by_folder.items():
        kinds = [k for n in names if (k := _weight_kind(n))]
        if kinds and not any(ext == SAFE for ext, _ in kinds):
            out.append(folder or ".")
    return sorted(out)


def pickle_message(ref: str, parts: list[str]) -> str:
    named = [p if p != "." else "the top folder" for p in parts]
    which = "the repository publishes" if parts == ["."] else ", ".join(named) + (
        " publishes" if len(parts) == 1 else " publish")
    return (f"{ref}: {which} pickle weights only (.bin/.ckpt). A pickle can run code when "
            f"it is loaded, so genhelpers loads .safetensors only unless you opt in: pass allow_pickle=True (the "
            f"notebook's `allow_pickle` parameter) if you trust the source; the files are then read with torch's "
            f"weights-only unpickler.")


def pickled_parts(files, index: dict | None, only=None, aliases: dict | None = None) -> list[str]:
    """The components that would be read from pickles: of a listing's ``files`` (relative paths), those the
    loading class reads (``only``; None: all that ``model_index.json`` names, or the top folder of a single model)
    whose weights are all pickles. A component the caller passes in is never read, so its files do not count."""
    listing = names_by_folder(files)
    for part, folder in (aliases or {}).items():  # shap-e's renderer keeps its safetensors in renderer/
        listing[part] = listing.get(part, []) + listing.get(folder, [])
    parts = {""} if index is None else {k for k, v in index.items() if isinstance(v, list) and len(v) == 2
                                        and v[0] is not None and (only is None or k in only)}
    return pickle_only_parts({f: n for f, n in listing.items() if f in parts})


def check_weights(folder: Path, allow_pickle: bool = False, ref: str | None = None, only=None,
                  aliases: dict | None = None) -> None:
    """Refuse a folder where a component that will be read (``only``; None: all) has pickle weights only (they
    can run code when loaded) unless allowed."""
    if allow_pickle or not folder.is_dir():
        return
    files = [f.relative_to(folder).as_posix() for pattern in ("*", "*/*") for f in folder.glob(pattern) if f.is_file()]
    index_file = folder / "model_index.json"
    index = json.loads(index_file.read_text()) if index_file.is_file() else None
    if parts := pickled_parts(files, index, only, aliases):
        raise ValueError(pickle_message(ref or str(folder), parts))


def check_layout(folder: Path, cls_name: str, wanted=None, aliases: dict | None = None) -> None:
    """A pipeline folder must hold model_index.json and a subfolder for every component it lists that the
    loading class uses (``wanted``; None: all), or the folder ``aliases`` names for it. Names what is missing
    before any weights are read."""
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise ValueError(f"{folder} is not a {cls_name} folder: it has no model_index.json (a diffusers pipeline "
                         f"folder lists its components there, one subfolder each)")
    index = json.loads(index_file.read_text())
    listed = {k for k, v in index.items() if isinstance(v, list) and len(v) == 2 and v[0] is not None}
    aliases = aliases or {}
    missing = sorted(c for c in listed if (wanted is None or c in wanted) and not (folder / c).is_dir()
                     and not (c in aliases and (folder / aliases[c]).is_dir()))
    if missing:
        raise ValueError(f"{folder} is not a complete {cls_name} folder: missing component(s) "
                         f"{', '.join(missing)} (model_index.json lists them; each needs its subfolder with "
                         f"config and weights). Re-download the model or fix the folder.")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _weights_folder(top: Path, marker: str | None = None) -> Path | None:
    """The folder under ``top`` that holds a diffusers or transformers layout (the shallowest, newest version):
    a model mounts its files at <model>/<framework>/<variation>/<version>/, a dataset at its top or below.
    ``marker``: a file of another published layout (``models/ip-adapter_sd15.safetensors``): the folder whose
    relative path it is."""
    for name in (marker,) if marker else ("model_index.json", "config.json"):
        hits = sorted(top.glob(f"**/{name}"), key=lambda p: _newest_first(p.parent))
        if hits:
            return hits[0].parents[name.count("/")]
    return None


def from_kaggle_input(repo: str, marker: str | None = None) -> Path | None:
    """An attached dataset or model named after the repository (its name, or its name as a Kaggle slug)."""
    name = repo.split("/")[-1]
    names = {name, _slug(name), name.lower()}
    for input_name, top in kaggle_inputs():
        if input_name in names or _slug(input_name) in names:
            if found := _weights_folder(top, marker):
                return found
    return None


# every part starts with a letter or digit: no '.', '..' or hidden names, so a handle stays inside the mount
_PART = r"[A-Za-z0-9][\w.-]*"
KAGGLE_HANDLE = re.compile(rf"^{_PART}/{_PART}/{_PART}/{_PART}(/\d+)?$")


def kaggle_handle(ref: str) -> str:
    """``kaggle:<owner>/<model>/<framework>/<variation>[/<version>]`` -> the handle; a teaching error otherwise."""
    handle = ref.removeprefix("kaggle:").strip("/")
    if not KAGGLE_HANDLE.match(handle):
        raise ValueError(f"model={ref!r} is not a Kaggle Models handle: write "
                         f"'kaggle:<owner>/<model>/<framework>/<variation>/<version>' as the model's page shows it "
                         f"(e.g. 'kaggle:alice/sdxl/pyTorch/base/1'; without the version the newest is used)")
    return handle


def from_kagglehub(handle: str) -> Path | None:
    """A Kaggle Models handle: the attached mount when there is one, else kagglehub (which returns the mount
    inside a Kaggle session and downloads elsewhere). The folder that really holds the weights is returned."""
    parts = kaggle_handle("kaggle:" + handle).split("/")
    root = kaggle_input_root()
    for top in (root / "models" / Path(*parts), root / Path(*parts[1:])):
        if top.is_dir() and top.resolve().is_relative_to(root.resolve()) and (found := _weights_folder(top)):
            return found
    try:
        import kagglehub
    except ImportError:
        return None
    path = Path(kagglehub.model_download(handle))
    return _weights_folder(path) or path


WEIGHT_BASES = ("diffusion_pytorch_model", "model", "pytorch_model")  # the names diffusers/transformers load
SHARD = re.compile(r"-\d{5}-of-\d{5}$")
KEEP_SUFFIXES = (".json", ".txt", ".model")  # configs, tokenizer and processor files (vocab, merges, spiece)


def _weight_kind(name: str) -> tuple[str, str | None] | None:
    """'diffusion_pytorch_model.fp16.safetensors' and its shards 'diffusion_pytorch_model.fp16-00001-of-00002.
    safetensors' -> ('.safetensors', 'fp16'); None for files no loader reads
    (single-file checkpoints such as 'sdxl_vae.safetensors', ONNX, Flax, TF)."""
    for ext in WEIGHT_FILES:
        if name.endswith(ext):
            # a shard's number ends the stem, after the variant: model.fp16-00001-of-00002.safetensors
            parts = SHARD.sub("", name[: -len(ext)]).split(".")
            base, variant = parts[0], (parts[1] if len(parts) == 2 else None)
            if len(parts) <= 2 and base in WEIGHT_BASES:
                return ext, variant
    return None


def choose_weights(names: list[str], variant: str | None, allow_pickle: bool) -> list[str]:
    """From the file names of one component folder, the weight files to fetch: safetensors in the asked variant,
    else the default, else another variant that exists (diffusers upcasts fp16 files when loading in float32);
    pickles only when allowed and no safetensors exist. Shards and their index come together."""
    kinds = {n: k for n in names if (k := _weight_kind(n))}
    exts = [SAFE] + (list(PICKLE) if allow_pickle else [])
    for ext in exts:
        have = {v for e, v in kinds.values() if e == ext}
        for v in [variant, None, *sorted(x for x in have if x not in (variant, None, "non_ema"))]:
            if v in have:
                return sorted(n for n, k in kinds.items() if k == (ext, v))
    return []


def component_variant(names: list[str]) -> str | None:
    """The variant of the weight files chosen for a component (None: default names)."""
    kinds = [k for n in names if (k := _weight_kind(n))]
    return kinds[0][1] if kinds else None


def select_files(files: list[str], index: dict | None, variant: str | None, allow_pickle: bool,
                 only=None, aliases: dict | None = None) -> list[str]:
    """The files worth downloading from a repository listing: model_index.json, then for each component the
    loading class uses (``only``; None: all that model_index names) its configs, tokenizer/processor files and
    one set of weights (``choose_weights``). A single-model repository (no model_index.json) is one component
    at the top: config, processor and tokenizer files, weights. Published repos also carry single-file
    checkpoints, ONNX, Flax and pickle copies, several GB each, which are never fetched."""
    if index is None:
        comps = [""]
        out = []
    else:
        comps = [k for k, v in index.items() if isinstance(v, list) and len(v) == 2 and v[0] is not None
                 and (only is None or k in only)]
        out = ["model_index.json"]
    def pick(folder: str) -> tuple[list[str], list[str]]:
        prefix = f"{folder}/" if folder else ""
        inside = [f[len(prefix):] for f in files if f.startswith(prefix) and "/" not in f[len(prefix):]]
        return ([prefix + f for f in inside if f.endswith(KEEP_SUFFIXES)],
                [prefix + f for f in choose_weights(inside, variant, allow_pickle)])

    for c in comps:
        keep, chosen = pick(c)
        out += keep
        if not chosen and c in (aliases or {}):  # e.g. shap-e: the renderer's safetensors live in renderer/
            keep, chosen = pick(aliases[c])
            out += keep
        out += chosen
    return sorted(set(out))


def hub_token() -> str | None:
    """A Hugging Face token for gated models, from HF_TOKEN in the environment, Kaggle Secrets or Colab's
    secrets (a secret named HF_TOKEN in each). Never printed."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token
    try:
        from kaggle_secrets import UserSecretsClient
    except ImportError:  # not on Kaggle
        pass
    else:
        try:
            return UserSecretsClient().get_secret("HF_TOKEN") or None
        except Exception as e:  # no such secret, or the secrets service failed: say which, never the value
            _secret_lookup_failed("Kaggle Secrets", e)
    try:
        from google.colab import userdata
    except ImportError:  # not on Colab
        return None
    try:
        return userdata.get("HF_TOKEN") or None
    except Exception as e:  # no such secret, or access not granted to this notebook
        _secret_lookup_failed("Colab's secrets", e)
        return None


def _secret_lookup_failed(where: str, error: Exception) -> None:
    """A failing secrets lookup is not 'no token': name the service and the error's class (the message of a
    secrets service may echo what was asked, never the value; it is not printed)."""
    print(f"⚠ HF_TOKEN could not be read from {where} ({type(error).__name__}); continuing without a token "
          f"(gated models will say so)")


class GatedModel(WeightsNotFound):
    pass


class HubUnreachable(WeightsNotFound):
    pass


def gated_message(repo: str, token: bool) -> str:
    return (f"{repo} is a gated model: its authors require you to accept their licence before downloading"
            + (" (the token given has not been granted access yet)" if token else " (no token was found)") + ".\n"
            f"  1. open https://huggingface.co/{repo}, sign in and accept the licence;\n"
            f"  2. create a token at https://huggingface.co/settings/tokens (read access) and add it as a secret named "
            f"HF_TOKEN (Kaggle: Add-ons → Secrets; Colab: the key icon in the left bar; elsewhere: "
            f"export HF_TOKEN=…);\n"
            f"  3. re-run this cell.")


def from_hub(repo: str, variant: str | None, allow_pickle: bool, only=None, aliases: dict | None = None,
             revision: str | None = None, exact=()) -> tuple[Path, str]:
    """Download (or, offline, find in the cache) exactly the files ``select_files`` picks from the repo's
    listing — or the files ``exact`` names (a catalog entry's, for a repository in another layout) — all at one
    commit: ``revision`` (a commit or branch; None: main) is resolved once, and the listing, the pickle check and
    the download all use that commit. Returns (folder, commit). Gated repositories and an unreachable hub get
    their own errors."""
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    token = hub_token()
    if offline():
        snap = Path(snapshot_download(repo, revision=revision, local_files_only=True))  # LocalEntryNotFoundError
        files = [str(f.relative_to(snap)) for f in snap.rglob("*") if f.is_file()]
        commit = snap.name  # the cache keeps each snapshot in a folder named after its commit
    else:
        try:
            info = HfApi().model_info(repo, revision=revision, token=token)
        except GatedRepoError as e:
            raise GatedModel(gated_message(repo, bool(token))) from e
        except RevisionNotFoundError as e:
            raise WeightsNotFound(f"{repo} has no revision {revision!r}: check the commit on "
                                  f"https://huggingface.co/{repo}/commits/main") from e
        except RepositoryNotFoundError as e:
            raise WeightsNotFound(f"{repo} is not on the Hugging Face hub (or is private and the token cannot see "
                                  f"it): check the spelling on https://huggingface.co/{repo}") from e
        except Exception as e:  # connection refused, DNS, timeouts (httpx's transport errors, OSError)
            if not (isinstance(e, (OSError, ConnectionError)) or type(e).__module__.startswith(("httpx", "httpcore"))):
                raise
            raise HubUnreachable(f"the Hugging Face hub could not be reached for {repo} ({type(e).__name__}): "
                                 f"on Kaggle turn the internet on (Settings → Internet on), or attach the weights "
                                 f"as an input; HF_HUB_OFFLINE=1 uses only the local cache") from e
        commit = info.sha
        files = [s.rfilename for s in info.siblings or []]
    index = None
    if "model_index.json" in files:
        try:
            index = json.loads(Path(hf_hub_download(repo, "model_index.json", revision=commit, token=token,
                                                    local_files_only=offline())).read_text())
        except GatedRepoError as e:
            raise GatedModel(gated_message(repo, bool(token))) from e
        except LocalEntryNotFoundError:
            raise
        except EntryNotFoundError:
            index = None
    if listed := list(exact):  # stylecrafter: the exact files of a catalog entry, nothing else
        missing = [f for f in listed if f not in files]
        if missing:
            raise ValueError(f"{repo} does not list {', '.join(missing)}")
        if not allow_pickle and (pickled := [f for f in listed if f.endswith(PICKLE)]):
            raise ValueError(pickle_message(repo, pickled))
        wanted = listed
    elif not allow_pickle and (pickled := pickled_parts(files, index, only, aliases)):  # before any download
        raise ValueError(pickle_message(repo, pickled))
    else:
        wanted = select_files(files, index, variant, allow_pickle, only, aliases)
    try:
        return Path(snapshot_download(repo, revision=commit, allow_patterns=wanted, token=token,
                                      local_files_only=offline())), commit
    except GatedRepoError as e:
        raise GatedModel(gated_message(repo, bool(token))) from e


def not_found_message(ref: str, repo: str | None, entry: catalog.Entry | None, why: str) -> str:
    repo = repo or ref
    slug = _slug(repo.split("/")[-1])
    hub_state = "HF_HUB_OFFLINE=1, so the hub was not asked" if offline() else "the hub could not provide it"
    lines = [
        f"Could not find weights for {ref!r} ({why}; {hub_state}). Provide them one of these ways:",
        "  1. a local folder: model='/path/to/folder' (a diffusers folder with model_index.json or config.json)",
        f"  2. on Kaggle, attach the weights as a dataset or model named '{slug}' "
        f"(searched under {kaggle_input_root()})",
        "  3. a Kaggle Model: attach it (Add Input), or "
        "model='kaggle:<owner>/<model>/<framework>/<variation>/<version>' "
        "(kagglehub downloads it outside Kaggle)",
        ("  4. the Hugging Face hub: turn the internet on (Kaggle: Settings → Internet on) and unset "
         "HF_HUB_OFFLINE; files are cached under ~/.cache/huggingface"),
    ]
    if entry:
        lines.append(f"  5. for a CPU smoke run without any download: model='{entry.tiny}' (random-weight twin)")
    return "\n".join(lines)


def resolve(ref, variant: str | None = None, allow_pickle: bool = False, only=None) -> Resolved:
    """``only``: the pipeline components worth downloading from the hub (None: all that model_index names)."""
    kind = kind_of(ref)
    ref = str(ref)
    entry = catalog.find(ref)
    aliases = entry.component_folders if entry else None
    if kind == "tiny":
        path = twin_folder(ref[5:])
        check_weights(path, allow_pickle, ref, only, aliases)
        return Resolved(ref, _inside(path, entry), "tiny", entry)
    if kind == "path":
        path = Path(ref).expanduser().resolve()
        check_weights(path, allow_pickle, None, only, aliases)
        return Resolved(ref, path, "path", entry)
    if kind == "kaggle":
        handle = kaggle_handle(ref)
        try:
            path = from_kagglehub(handle)
        except Exception as e:  # kagglehub raises its own types for auth / network / not found
            raise WeightsNotFound(not_found_message(ref, None, entry, f"kagglehub failed: {e}")) from e
        if path is None:
            raise WeightsNotFound(not_found_message(ref, None, entry, "kagglehub is not installed"))
        check_weights(path, allow_pickle, None, only, aliases)
        return Resolved(ref, path, "kagglehub", entry)

    name, pinned = split_revision(ref)
    repo = entry.repo if entry else name
    pinned = pinned or (entry.revision if entry else None)
    exact = entry.files if entry else ()
    if (path := from_kaggle_input(repo, exact[0] if exact else None)) is not None:
        check_weights(path, allow_pickle, None, only, aliases)
        return Resolved(ref, _inside(path, entry), "kaggle-input", entry)
    if entry and entry.kaggle_handle:
        try:
            if (path := from_kagglehub(entry.kaggle_handle)) is not None:
                check_weights(path, allow_pickle, None, only, aliases)
                return Resolved(ref, path, "kagglehub", entry)
        except Exception as e:  # fall through to the hub, and say so: the weights' source changes
            print(f"⚠ the Kaggle Models mirror {entry.kaggle_handle} failed ({type(e).__name__}: "
                  f"{str(e).splitlines()[0][:200] if str(e) else ''}); trying the Hugging Face hub instead")
    try:
        path, commit = from_hub(repo, variant, allow_pickle, only, aliases, revision=pinned, exact=exact)
    except (GatedModel, HubUnreachable):
        raise
    except ValueError as e:
        if "pickle weights only" in str(e):
            raise
        raise WeightsNotFound(not_found_message(ref, repo, entry, f"{type(e).__name__}: {e}")) from e
    except Exception as e:
        reason = type(e).__name__ if offline() else f"{type(e).__name__}: {e}".splitlines()[0]
        raise WeightsNotFound(not_found_message(ref, repo, entry, f"not in the hub cache ({reason})")) from e
    check_weights(path, allow_pickle, None, only, aliases)
    return Resolved(ref, _inside(path, entry), "hf-hub", entry, commit)


def _inside(path: Path, entry: catalog.Entry | None) -> Path:
    """The folder a catalog entry reads inside its repository's folder (``subfolder``; stylecrafter)."""
    return path / entry.subfolder if entry is not None and entry.subfolder else path
