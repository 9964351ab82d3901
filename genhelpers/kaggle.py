"""Run the collection on Kaggle's GPUs through the official ``kaggle`` client (we do not schedule anything).

``build``   one push folder per notebook: the notebook with a profile's parameters injected (papermill's
            prepare-only mode) and its ``kernel-metadata.json``; plus a dataset folder with the genhelpers wheel
            and a wheelhouse of the tested diffusers/transformers/huggingface-hub/accelerate versions, so a
            pushed notebook installs genhelpers (and the tested versions) offline from ``/kaggle/input``.
``push``    ``kaggle datasets create|version -p <dataset>`` then ``kaggle kernels push -p <folder>`` for each.
``status``  ``kaggle kernels status <id>`` for each.
``collect`` ``kaggle kernels output <id> -p <folder>`` for each, folded into the same report as local runs.

The client needs an API token (``~/.kaggle/kaggle.json`` or ``KAGGLE_USERNAME``/``KAGGLE_KEY``) and the
internet; its errors are passed on as they are.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import catalog
from .media import atomic_dir, write_json

MACHINES = {"T4x2": "NvidiaTeslaT4", "P100": "NvidiaTeslaP100"}  # Kaggle's machine_shape names
DATASET_SLUG = "genhelpers-wheel"
MANIFEST = "kaggle.json"
WORKING = "/kaggle/working/outputs"
REPO = Path(__file__).resolve().parent.parent


def kernel_slug(notebook: str) -> str:
    return "genai-" + re.sub(r"[^a-z0-9]+", "-", notebook.lower()).strip("-")


def kernel_title(notebook: str) -> str:
    """A title Kaggle turns back into the same slug (it warns when they differ)."""
    return "GenAI " + kernel_slug(notebook).removeprefix("genai-").replace("-", " ")


def model_sources(params: dict) -> list[str]:
    """Kaggle Models the parameters name: ``kaggle:<handle>`` references, and catalog models with a mirror."""
    out = []
    for value in params.values():
        if not isinstance(value, str):
            continue
        if value.startswith("kaggle:"):
            out.append(value.removeprefix("kaggle:"))
        elif (entry := catalog.find(value)) is not None and entry.kaggle_handle and not value.startswith("tiny:"):
            out.append(entry.kaggle_handle)
    return sorted(set(out))


def kernel_metadata(notebook: str, user: str, params: dict, machine: str = "T4x2", private: bool = True,
                    internet: bool = True, dataset: str | None = None) -> dict:
    if machine not in MACHINES:
        raise ValueError(f"machine={machine!r}: use one of {', '.join(MACHINES)} (Kaggle's GPU machines)")
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


def build_dataset(folder: Path, user: str, wheelhouse: bool = True, run=subprocess.run) -> Path:
    """The dataset pushed notebooks attach: genhelpers-*.whl, wheelhouse/ (the tested versions' wheels and
    tested-versions.txt) and dataset-metadata.json."""
    from .stack import TESTED_FILE, tested

    if not (REPO / "pyproject.toml").is_file():
        raise RuntimeError("kaggle build needs a checkout of the repository (it builds the genhelpers wheel)")
    folder.mkdir(parents=True, exist_ok=True)
    _pip(["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(folder), str(REPO)], run)
    if wheelhouse:
        wh = folder / "wheelhouse"
        wh.mkdir(exist_ok=True)
        # the four libraries only, without dependencies: a pip download with dependencies would fetch torch
        specs = [f"{n}=={v}" for n, v in tested().items()]
        _pip(["download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(wh), *specs], run)
        shutil.copy(TESTED_FILE, wh / "tested-versions.txt")
    write_json(folder / "dataset-metadata.json", {"title": "genhelpers wheel", "id": f"{user}/{DATASET_SLUG}",
                                                  "licenses": [{"name": "apache-2.0"}]})
    return folder


def build(profile: str, out, user: str, notebooks_dir=REPO / "notebooks", only=None, machine: str = "T4x2",
          private: bool = True, internet: bool = True, wheelhouse: bool = True, run=subprocess.run) -> dict:
    """Write the push folders under ``out`` (written aside, then moved into place) and a manifest."""
    import papermill as pm

    from .runs.runner import load_profiles

    if not user or "/" in user:
        raise ValueError(f"user={user!r}: give your Kaggle user name (kaggle.com/<user>), e.g. --user alice")
    notebooks_dir, out = Path(notebooks_dir), Path(out)
    profiles = load_profiles(notebooks_dir / "profiles.yaml")
    names = [n for n in profiles if profile in profiles[n] and (not only or n in only)]
    if not names:
        raise ValueError(f"no notebook has a {profile!r} profile" + (f" among {', '.join(only)}" if only else ""))
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"out={str(out)!r} is not empty: choose a new folder (nothing is overwritten)")
    with atomic_dir(out) as work:
        dataset = f"{user}/{DATASET_SLUG}"
        build_dataset(work / DATASET_SLUG, user, wheelhouse=wheelhouse, run=run)
        kernels = []
        for name in names:
            folder = work / kernel_slug(name)
            folder.mkdir()
            params = {**profiles[name][profile], "output_dir": f"{WORKING}/{name}"}
            pm.execute_notebook(str(notebooks_dir / f"{name}.ipynb"), str(folder / f"{name}.ipynb"),
                                parameters=params, prepare_only=True, kernel_name="python3", progress_bar=False)
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
    """Run ``kaggle <args>``; its output, or a RuntimeError with its own message."""
    if shutil.which("kaggle") is None:
        raise RuntimeError("the official Kaggle client is not installed: pip install 'genhelpers[kaggle]' (or "
                           "pip install kaggle), then put your API token in ~/.kaggle/kaggle.json")
    result = run(["kaggle", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"kaggle {' '.join(args)} failed: {(result.stderr or result.stdout or '').strip()[-800:]}")
    return result.stdout


def _manifest(build_dir) -> dict:
    path = Path(build_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{build_dir} has no {MANIFEST}: run `genhelpers kaggle build` first")
    return json.loads(path.read_text())


def push(build_dir, new_dataset: bool = False, message: str = "genhelpers", run=subprocess.run) -> list[str]:
    """Upload the dataset (a new version, or ``create`` the first time), then push every notebook."""
    build_dir = Path(build_dir)
    m = _manifest(build_dir)
    ds = str(build_dir / m["dataset_folder"])
    if new_dataset:
        client(["datasets", "create", "-p", ds, "--dir-mode", "zip"], run)
    else:
        client(["datasets", "version", "-p", ds, "-m", message, "--dir-mode", "zip"], run)
    pushed = []
    for k in m["kernels"]:
        client(["kernels", "push", "-p", str(build_dir / k["folder"])], run)
        pushed.append(k["id"])
    return pushed


def parse_status(text: str) -> str:
    """'alice/genai-sdxl has status "KernelWorkerStatus.COMPLETE"' -> 'complete'."""
    found = re.search(r'has status "([^"]+)"', text)
    return found.group(1).split(".")[-1].lower() if found else "unknown"


def status(build_dir, run=subprocess.run) -> dict[str, str]:
    return {k["notebook"]: parse_status(client(["kernels", "status", k["id"]], run))
            for k in _manifest(build_dir)["kernels"]}


def _log_error(folder: Path) -> tuple[str, str, str]:
    """The last Python exception in a kernel's log (Kaggle writes <slug>.log as JSON lines of streams)."""
    text = ""
    for log in sorted(folder.rglob("*.log")):
        raw = log.read_text(errors="replace")
        try:
            text += "".join(e.get("data", "") for e in json.loads(raw))
        except ValueError:
            text += raw
    from .runs.errors import plain

    text = plain(text)
    hits = re.findall(r"^([\w.]*(?:Error|Exception|Exit|Interrupt)): ?(.*)$", text, flags=re.M)
    ename, evalue = hits[-1] if hits else ("KernelError", "the kernel ended with an error (see its log on Kaggle)")
    return ename.split(".")[-1], evalue, text[-4000:]


def collect(build_dir, out, run=subprocess.run) -> dict:
    """Download each kernel's output and fold it into a report (``out``/report.*), like a local run."""
    from .media import versions
    from .runs import errors
    from .runs.report import SCHEMA, write_report
    from .runs.runner import cell_durations, output_files, sidecar_facts, summary

    m = _manifest(build_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for k in m["kernels"]:
        name = k["notebook"]
        state = parse_status(client(["kernels", "status", k["id"]], run))
        r = {"notebook": name, "profile": m["profile"], "kaggle_id": k["id"], "kaggle_status": state,
             "parameters": k["parameters"], "duration_s": 0.0, "executed": f"{name}.ipynb"}
        if state in ("queued", "running", "new", "unknown"):
            r.update(status="skipped", reason=f"not finished on Kaggle (status {state}): collect again later")
            results.append(r)
            continue
        raw = out / f".{name}-download"
        shutil.rmtree(raw, ignore_errors=True)
        client(["kernels", "output", k["id"], "-p", str(raw)], run)
        failure = _log_error(raw) if state != "complete" else None
        files_dir = out / name
        shutil.rmtree(files_dir, ignore_errors=True)
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
            r.update(status="failed", partial_files=files, error=errors.describe(ename, evalue, traceback=tb))
        shutil.rmtree(raw, ignore_errors=True)
        results.append(r)
    report = {"schema": SCHEMA, "profile": m["profile"], "profiles": [m["profile"]], "where": "kaggle",
              "machine": m["machine"], "started": m["built"], "duration_s": sum(r["duration_s"] for r in results),
              "workers": len(results), "gpus": [], "versions": versions(), "summary": summary(results),
              "results": results}
    write_report(report, out)
    return report
