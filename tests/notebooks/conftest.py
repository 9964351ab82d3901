"""Every papermill run the notebook tests read happens once per session, in ONE batch, two at a time as `make run`
runs notebooks (the runner gives each kernel its share of the cores), the longest first so that no core idles at
the end: every notebook's smoke profile (the `collection`), every module's `RUNS` (a notebook with other inputs)
and every module's `BAD_INPUTS` rows. Each test then reads its run's executed copy and outputs (issue 20, 30)."""
import importlib
import json
import os
import pkgutil

import pytest

from ..conftest import NOTEBOOKS
from .common import ALL, PROFILES

# While working on a few notebooks: GENHELPERS_TEST_NOTEBOOKS=stylecrafter,animatediff runs only those in the
# session's batch (then run only their test files; CI sets nothing and runs all).
ONLY = [n for n in os.environ.get("GENHELPERS_TEST_NOTEBOOKS", "").split(",") if n] or None
# the CPU classrooms train for most of their run: started first, so the short runs fill the other core around them
LONGEST = ("diffusion_from_scratch", "video_clip", "clip", "clip_filtering", "motion_retrieval")


def _tables():
    """Every notebook test module's ``RUNS`` ({key: (notebook, override or prepare(folder) -> override)}) and
    ``BAD_INPUTS`` rows ((notebook, override, ename, evalue, stops_at))."""
    from tests import notebooks

    runs, bad = {}, []
    for info in pkgutil.iter_modules(notebooks.__path__):
        if info.name.startswith("test_"):
            module = importlib.import_module(f"tests.notebooks.{info.name}")
            for key, row in getattr(module, "RUNS", {}).items():
                assert key not in runs, f"RUNS key {key!r} is used twice"
                if ONLY is None or row[0] in ONLY:
                    runs[key] = row
            bad += [(row[0], row[1]) for row in getattr(module, "BAD_INPUTS", []) if ONLY is None or row[0] in ONLY]
    return runs, bad


@pytest.fixture(scope="session")
def batch(tmp_path_factory):
    """{("collection", notebook) | ("run", key) | ("bad", notebook, override json): (result, output folder)}."""
    from genhelpers.runs.runner import Job, run_jobs

    root = tmp_path_factory.mktemp("notebook-runs")
    runs, bad = _tables()
    names = sorted((n for n in ALL if ONLY is None or n in ONLY), key=lambda n: (n not in LONGEST, n))
    keys, jobs = [], []

    def add(key, name, override, out):
        out.mkdir(parents=True, exist_ok=True)
        keys.append(key)
        jobs.append(Job(name, "smoke", NOTEBOOKS / f"{name}.ipynb", {**PROFILES[name]["smoke"], **override}, out))

    for name in names:
        add(("collection", name), name, {}, root / "collection")
    for key, (name, override) in runs.items():
        inputs = root / "inputs" / key
        inputs.mkdir(parents=True)
        add(("run", key), name, override(inputs) if callable(override) else override, root / "runs" / key)
    for i, (name, override) in enumerate(bad):
        add(("bad", name, json.dumps(override, sort_keys=True)), name, override, root / "bad" / f"{i:03d}-{name}")
    results = run_jobs(jobs, workers=2, progress=lambda *a: None)
    return {key: (result, job.out_dir) for key, job, result in zip(keys, jobs, results, strict=True)}


@pytest.fixture(scope="session")
def collection(batch):
    """(output folder, {notebook: result}) of every notebook's smoke profile, as `make run` gives them."""
    results = {key[1]: r for key, (r, _) in batch.items() if key[0] == "collection"}
    folders = {out for key, (_, out) in batch.items() if key[0] == "collection"}
    return (folders.pop() if folders else None), results


@pytest.fixture(scope="session")
def runs(batch):
    """``runs(key) -> (result, output folder)`` of a module's ``RUNS`` row."""
    return lambda key: batch[("run", key)]


@pytest.fixture(scope="session")
def bad_inputs(batch):
    """``bad_inputs(notebook, override) -> (result, output folder)`` of a ``BAD_INPUTS`` row: a real papermill run of
    the notebook's smoke profile with the override."""
    return lambda name, override: batch[("bad", name, json.dumps(override, sort_keys=True))]


@pytest.fixture(scope="session")
def nbval_runs(collection, tmp_path_factory):
    """nbval's re-executions of the executed copies where cross-kernel determinism is the point (sdxl's images, the
    clip classroom's seeded training), and of an sdxl copy whose checked summary was changed (nbval must fail it),
    all three at once. {"sdxl" | "clip" | "sdxl-tampered": CompletedProcess}."""
    import subprocess

    import nbformat

    from .common import nbval_start

    root = tmp_path_factory.mktemp("nbval")
    out, _ = collection
    nb = nbformat.read(out / "sdxl.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.source.startswith("# NBVAL_CHECK_OUTPUT"))
    cell.outputs[0]["text"] = cell.outputs[0]["text"].replace("64x64", "65x64")
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    injected.source = injected.source.replace(str(out), str(root / "tampered-out"))  # its own output folder
    nbformat.write(nb, root / "tampered.ipynb")
    started = {"sdxl": nbval_start(out / "sdxl.ipynb", root / "sdxl"),
               "clip": nbval_start(out / "clip.ipynb", root / "clip"),
               "sdxl-tampered": nbval_start(root / "tampered.ipynb", root / "tampered")}
    done = {}
    for key, proc in started.items():
        stdout, stderr = proc.communicate()
        done[key] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return done
