"""Run the collection on Kaggle's GPUs through the official ``kaggle`` client (we do not schedule anything).

``build``   one push folder per notebook: the notebook with a profile's parameters injected (papermill's
            prepare-only mode) and its ``kernel-metadata.json``; plus a dataset folder with the genhelpers wheel
            and a wheelhouse of the tested diffusers/transformers/huggingface-hub/accelerate versions, so a
            pushed notebook installs genhelpers (and the tested versions) offline from ``/kaggle/input``.
``push``    ``kaggle datasets create|version -p <dataset>``, waits until ``kaggle datasets status`` says ready, then
            ``kaggle kernels push -p <folder> --accelerator NvidiaTeslaT4`` for each.
``status``  ``kaggle kernels status <id>`` for each (with Kaggle's failure message when there is one).
``collect`` ``kaggle kernels output <id> -p <folder>`` for each, folded into the same report as local runs.

The client (``kaggle>=1.8.4``, which reads ``machine_shape``; tested against 2.2.5's behaviour) needs an API
token (``~/.kaggle/kaggle.json`` or ``KAGGLE_USERNAME``/``KAGGLE_KEY``) and the internet. It prints some errors
and still exits 0 ("Kernel push error: …", "The following are not valid dataset sources …"): ``client`` reads
its output and raises on those too.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..hub import catalog
from ..outputs.media import atomic_dir, write_json
from ..platform.folders import DATASET_SLUG

# Kaggle's machine_shape / --accelerator names. The P100 is retired (the client warns and runs on a T4).
MACHINES = {"T4x2": "NvidiaTeslaT4"}
MANIFEST = "genhelpers-build.json"  # not kaggle.json: that is the client's credentials file
# What the client prints, exit status 0 or not, when something did not happen
CLIENT_ERRORS = re.compile(r"^(Kernel push error|Dataset creation error|Dataset version creation error|"
                           r"The following are not valid \w+ sources)[^\n]*", re.M)
FINISHED = ("complete", "error", "cancel_acknowledged")
NOT_FINISHED = ("queued", "running", "new_script", "cancel_requested", "unknown")
WORKING = "/kaggle/working/outputs"
REPO = Path(__file__).resolve().parents[2]


def kernel_slug(notebook: str) -> str:
    return "genai-" + re.sub(r"[^a-z0-9]+", "-", notebook.lower()).strip("-")


def kernel_title(notebook: str) -> str:
    """A title Kaggle turns back into the same slug (it warns when they differ)."""
    return "GenAI " + kernel_slug(notebook).removeprefix("genai-").replace("-", " ")


def model_source(handle: str, where: str = "model") -> str:
    """A Kaggle Models handle as kernel-metadata.json needs it: all five parts,
    <owner>/<model>/<framework>/<variation>/<version>."""
    from ..hub.weights import kaggle_handle

    handle = kaggle_handle("kaggle:" + handle.removeprefix("kaggle:"))
    if len(handle.split("/")) != 5:
        raise ValueError(f"{where}='kaggle:{handle}' has no version: a pushed notebook attaches one version of a "
                         f"Kaggle Model, so write 'kaggle:{handle}/<version>' with the version number shown on the "
                         f"model's page (Model variations → the variation → its versions)")
    return handle


def model_sources(params: dict) -> list[str]:
    """Kaggle Models the parameters name: ``kaggle:<handle>`` references, and catalog models with a mirror."""
    out = []
    for key, value in params.items():
        if not isinstance(value, str):
            continue
        if value.startswith("kaggle:"):
            out.append(model_source(value, key))
        elif (entry := catalog.find(value)) is not None and entry.kaggle_handle and not value.startswith("tiny:"):
            out.append(model_source(entry.kaggle_handle, key))
    return sorted(set(out))


def kernel_metadata(notebook: str, user: str, params: dict, machine: str = "T4x2", private: bool = True,
                    internet: bool = True, dataset: str | None = None) -> dict:
    if machine not in MACHINES:
        raise ValueError(f"machine={machine!r}: use one of {', '.join(MACHINES)} (Kaggle's GPU machines; the P100 "
                         f"is retired and the current image has no kernels for it)")
    return {
        "id": f"{user}/{kernel_slug(notebook)}",
        "title": kernel_title(notebook),
        "code_file": f"{notebook}.ipynb",
        "language": "python",
        "kernel_type": "notebook",
        "is_private": private,
        "enable_gpu": True,
        "enable_tpu": False,
        "enable_internet": internet,
        "machine_shape": MACHINES[machine],
        "dataset_sources": [dataset] if dataset else [],
        "model_sources": model_sources(params),
        "competition_sources": [],
        "kernel_sources": [],
    }


def _pip(args: list[str], run=subprocess.run) -> None:
    result = run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args[:2])} failed: {(result.stderr or '').strip()[-800:]}")


def build_wheel(dest: Path, run=subprocess.run) -> Path:
    """The genhelpers wheel, built from the **committed** files only (``git archive HEAD`` into a fresh folder, so
    untracked or stale files — a scratch module, an old ``build/lib`` — can never ride along); its file list is
    checked against ``git ls-tree HEAD genhelpers``. Returns the wheel's path in ``dest``."""
    import tarfile
    import tempfile
    import zipfile

    def git(*args) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the wheel is built from the repository's commits: git {' '.join(args)} failed "
                               f"({done.stderr.strip()[-300:]}); build it from a git checkout")
        return done.stdout

    committed = set(git("ls-tree", "-r", "--name-only", "HEAD", "genhelpers").split())
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="genhelpers-wheel-") as tmp:
        archive = Path(tmp) / "head.tar"
        git("archive", "--format=tar", "-o", str(archive), "HEAD")
        with tarfile.open(archive) as tar:
            tar.extractall(Path(tmp) / "src", filter="data")
        _pip(["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dest), str(Path(tmp) / "src")], run)
    (wheel,) = sorted(dest.glob("genhelpers-*.whl"))
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("genhelpers/")}
    extra = sorted(shipped - committed)
    if extra:
        wheel.unlink()
        raise RuntimeError(f"the wheel would carry files that are not committed: {', '.join(extra[:5])}")
    return wheel


def build_dataset(folder: Path, user: str, wheelhouse: bool = True, run=subprocess.run, target=None) -> Path:
    """The dataset pushed notebooks attach: genhelpers-*.whl (from the committed files), wheelhouse/ (the tested
    versions' wheels, their dependency closure against Kaggle's image and the media packages, for the image's
    Python and platform, see ``stack.build_wheelhouse``), dataset-metadata.json, and hashes.json: the SHA-256 of
    every file, which the install cell and ``ensure_stack`` check before installing anything from it."""
    from ..platform.folders import record_hashes
    from ..platform.stack import KAGGLE_TARGET, build_wheelhouse

    if not (REPO / "pyproject.toml").is_file():
        raise RuntimeError("kaggle build needs a checkout of the repository (it builds the genhelpers wheel)")
    folder.mkdir(parents=True, exist_ok=True)
    build_wheel(folder, run)
    if wheelhouse:
        build_wheelhouse(folder / "wheelhouse", target=target or KAGGLE_TARGET, run=run)
    write_json(folder / "dataset-metadata.json", {"title": "genhelpers wheel", "id": f"{user}/{DATASET_SLUG}",
                                                  "licenses": [{"name": "apache-2.0"}]})
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    record_hashes(folder, {"dataset": f"{user}/{DATASET_SLUG}", "commit": commit})
    return folder


def _name_the_dataset(path: Path, dataset: str) -> None:
    """In a pushed notebook, the install cell's default dataset becomes the one pushed with it (owner/slug)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    default = f'os.environ.get("GENHELPERS_DATASET", "{DATASET_SLUG}")'
    if default not in cell.source:
        raise RuntimeError(f"{path.name}: its install cell does not read GENHELPERS_DATASET as expected "
                           f"(run tools/sync_install_cell.py)")
    cell.source = cell.source.replace(default, f'os.environ.get("GENHELPERS_DATASET", "{dataset}")')
    nbformat.write(nb, path)


def build(profile: str, out, user: str, notebooks_dir=REPO / "notebooks", only=None, machine: str = "T4x2",
          private: bool = True, internet: bool = True, wheelhouse: bool = True, run=subprocess.run,
          target=None) -> dict:
    """Write the push folders under ``out`` (written aside, then moved into place) and a manifest."""
    import papermill as pm

    from .runner import check_names, check_parameter_names, load_profiles

    if not user or "/" in user:
        raise ValueError(f"user={user!r}: give your Kaggle user name (kaggle.com/<user>), e.g. --user alice")
    notebooks_dir, out = Path(notebooks_dir), Path(out)
    profiles = load_profiles(notebooks_dir / "profiles.yaml")
    names = [n for n in profiles if profile in profiles[n] and (not only or n in only)]
    check_names(names)
    if not names:
        raise ValueError(f"no notebook has a {profile!r} profile" + (f" among {', '.join(only)}" if only else ""))
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"out={str(out)!r} is not empty: choose a new folder (nothing is overwritten)")
    with atomic_dir(out) as work:
        dataset = f"{user}/{DATASET_SLUG}"
        build_dataset(work / DATASET_SLUG, user, wheelhouse=wheelhouse, run=run, target=target)
        kernels = []
        for name in names:
            folder = work / kernel_slug(name)
            folder.mkdir()
            params = {**profiles[name][profile], "output_dir": f"{WORKING}/{name}"}
            check_parameter_names(name, profile, params)
            pm.execute_notebook(str(notebooks_dir / f"{name}.ipynb"), str(folder / f"{name}.ipynb"),
                                parameters=params, prepare_only=True, kernel_name="python3", progress_bar=False)
            _name_the_dataset(folder / f"{name}.ipynb", dataset)
            meta = kernel_metadata(name, user, params, machine, private, internet, dataset)
            write_json(folder / "kernel-metadata.json", meta)
            kernels.append({"notebook": name, "id": meta["id"], "folder": folder.name, "parameters": params})
        manifest = {"user": user, "profile": profile, "machine": machine, "dataset": dataset,
                    "dataset_folder": DATASET_SLUG, "kernels": kernels,
                    "built": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        write_json(work / MANIFEST, manifest)
    return manifest


# ------------------------------------------------------------------------------------ the official client
def client(args: list[str], run=subprocess.run) -> str:
    """Run ``kaggle <args>``; its output, or a RuntimeError with its own message — also when it printed an
    error and exited 0, as kaggle 2.2.5 does for push errors and invalid sources."""
    if shutil.which("kaggle") is None:
        raise RuntimeError("the official Kaggle client is not installed: pip install 'genhelpers[kaggle]' (or "
                           "pip install 'kaggle>=1.8.4'), then put your API token in ~/.kaggle/kaggle.json")
    result = run(["kaggle", *args], capture_output=True, text=True)
    said = (result.stdout or "") + (result.stderr or "")
    if result.returncode != 0:
        raise RuntimeError(f"kaggle {' '.join(args)} failed: {said.strip()[-800:]}")
    if found := CLIENT_ERRORS.search(said):
        raise RuntimeError(f"kaggle {' '.join(args)} reported an error (exit status 0): {found.group(0)[:800]}")
    return result.stdout


def wait_for_dataset(dataset: str, run=subprocess.run, timeout: float = 600, every: float = 10,
                     sleep=time.sleep) -> str:
    """Poll ``kaggle datasets status`` until the dataset is ready: a kernel pushed earlier would attach a
    dataset that does not exist yet."""
    waited = 0.0
    while True:
        state = client(["datasets", "status", dataset], run).strip().splitlines()[-1:] or ["unknown"]
        state = state[0].strip().strip('"').lower()
        if state == "ready":
            return state
        if state in ("error", "failed"):
            raise RuntimeError(f"Kaggle could not process the dataset {dataset} (status {state}): see its page")
        if waited >= timeout:
            raise TimeoutError(f"the dataset {dataset} is still '{state}' after {timeout:.0f} s: run "
                               f"`genhelpers kaggle push` again without --new-dataset once it is ready")
        sleep(every)
        waited += every


def _manifest(build_dir) -> dict:
    path = Path(build_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{build_dir} has no {MANIFEST}: run `genhelpers kaggle build` first")
    return json.loads(path.read_text())


def push(build_dir, new_dataset: bool = False, message: str = "genhelpers", run=subprocess.run,
         wait=wait_for_dataset) -> list[str]:
    """Upload the dataset (a new version, or ``create`` the first time), then push every notebook."""
    build_dir = Path(build_dir)
    m = _manifest(build_dir)
    ds = str(build_dir / m["dataset_folder"])
    if new_dataset:
        client(["datasets", "create", "-p", ds, "--dir-mode", "zip"], run)
    else:
        client(["datasets", "version", "-p", ds, "-m", message, "--dir-mode", "zip"], run)
    wait(m["dataset"], run)
    pushed = []
    for k in m["kernels"]:
        client(["kernels", "push", "-p", str(build_dir / k["folder"]), "--accelerator",
                MACHINES[m.get("machine", "T4x2")]], run)
        pushed.append(k["id"])
    return pushed


def parse_status(text: str) -> tuple[str, str]:
    """'alice/genai-sdxl has status "KernelWorkerStatus.ERROR"' + 'Failure message: "…"' -> ('error', '…').
    Statuses: queued, running, complete, error, cancel_requested, cancel_acknowledged, new_script."""
    found = re.search(r'has status "([^"]+)"', text)
    message = re.search(r'^Failure message: "?(.*?)"?\s*$', text, flags=re.M)
    return (found.group(1).split(".")[-1].lower() if found else "unknown"), (message.group(1) if message else "")


def status(build_dir, run=subprocess.run) -> dict[str, str]:
    """{notebook: status, with Kaggle's failure message after a colon when there is one}."""
    out = {}
    for k in _manifest(build_dir)["kernels"]:
        state, message = parse_status(client(["kernels", "status", k["id"]], run))
        out[k["notebook"]] = f"{state}: {message}" if message else state
    return out


def _log_error(folder: Path) -> tuple[str, str, str]:
    """The last Python exception in a kernel's log (Kaggle writes <slug>.log as JSON lines of streams)."""
    text = ""
    for log in sorted(folder.rglob("*.log")):
        raw = log.read_text(errors="replace")
        try:
            text += "".join(e.get("data", "") for e in json.loads(raw))
        except ValueError:
            text += raw
    from .faults import plain

    text = plain(text)
    hits = re.findall(r"^([\w.]*(?:Error|Exception|Exit|Interrupt)): ?(.*)$", text, flags=re.M)
    ename, evalue = hits[-1] if hits else ("KernelError", "the kernel ended with an error (see its log on Kaggle)")
    return ename.split(".")[-1], evalue, text[-4000:]


def collect(build_dir, out, run=subprocess.run) -> dict:
    """Download each kernel's output and fold it into a report (``out``/report.*), like a local run."""
    from ..outputs.media import versions
    from . import faults
    from .report import SCHEMA, write_report
    from .runner import cell_durations, check_names, clear, output_files, sidecar_facts, summary

    m = _manifest(build_dir)
    check_names(k["notebook"] for k in m["kernels"])  # a manifest is data: its names never become paths
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for k in m["kernels"]:
        name = k["notebook"]
        state, message = parse_status(client(["kernels", "status", k["id"]], run))
        r = {"notebook": name, "profile": m["profile"], "kaggle_id": k["id"], "kaggle_status": state,
             "parameters": k["parameters"], "duration_s": 0.0, "executed": f"{name}.ipynb"}
        if message:
            r["kaggle_message"] = message
        if state not in FINISHED:
            r.update(status="skipped", reason=f"not finished on Kaggle (status {state}): collect again later")
            results.append(r)
            continue
        raw = out / f".{name}-download"
        clear(raw, out)
        client(["kernels", "output", k["id"], "-p", str(raw)], run)
        failure = _log_error(raw) if state != "complete" else None
        files_dir = out / name
        clear(files_dir, out)
        produced = raw / "outputs" / name
        shutil.move(str(produced if produced.is_dir() else raw), files_dir)
        executed = next(iter(sorted(raw.glob("*.ipynb")) if raw.is_dir() else []), None)
        if executed is not None:
            shutil.move(str(executed), out / f"{name}.ipynb")
        r["cells"] = cell_durations(out / f"{name}.ipynb")
        r["duration_s"] = round(sum(c["duration_s"] for c in r["cells"]), 2)
        facts = sidecar_facts(files_dir)
        r.update(gpu_peak_mib=facts["gpu_peak_mib"], kernel_host_peak_mib=facts["kernel_host_peak_mib"],
                 versions=facts["versions"])
        files = [f for f in output_files(files_dir) if not f.endswith(".log")]
        if state == "complete":
            r.update(status="passed", outputs=files)
        else:
            ename, evalue, tb = failure
            if message:  # Kaggle's own words on why the kernel failed (e.g. timeouts, quota, a bad source)
                tb = f"Kaggle: {message}\n{tb}"
                evalue = evalue if ename != "KernelError" else message
            r.update(status="failed", partial_files=files, error=faults.describe(ename, evalue, traceback=tb))
        clear(raw, out)
        results.append(r)
    report = {"schema": SCHEMA, "profile": m["profile"], "profiles": [m["profile"]], "where": "kaggle",
              "machine": m["machine"], "started": m["built"], "duration_s": sum(r["duration_s"] for r in results),
              "workers": len(results), "gpus": [], "versions": versions(), "summary": summary(results),
              "results": results}
    write_report(report, out)
    return report
