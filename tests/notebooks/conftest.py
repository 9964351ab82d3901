"""The notebook tests' shared run: every notebook's smoke profile, executed once per session, two at a time as
`make run` does (the runner gives each kernel its share of the cores); each notebook's tests read its executed copy
and outputs (issue 20)."""
import os

import pytest

from genhelpers.runs import run_collection

from ..conftest import NOTEBOOKS
from .common import ALL, ALONE

# While working on a few notebooks: GENHELPERS_TEST_NOTEBOOKS=stylecrafter,animatediff runs only those in the
# session's shared run and bad-input batch (then run only their test files; CI sets nothing and runs all).
ONLY = [n for n in os.environ.get("GENHELPERS_TEST_NOTEBOOKS", "").split(",") if n] or None


@pytest.fixture(scope="session")
def collection(tmp_path_factory):
    out = tmp_path_factory.mktemp("collection")
    report = run_collection("smoke", NOTEBOOKS, out, workers=2,
                            only=[n for n in ALL if n not in ALONE and (ONLY is None or n in ONLY)])
    return out, {r["notebook"]: r for r in report["results"]}


def _bad_input_rows():
    """(notebook, override) of every row of every notebook test module's ``BAD_INPUTS`` table."""
    import importlib
    import pkgutil

    from tests import notebooks

    rows = []
    for info in pkgutil.iter_modules(notebooks.__path__):
        if info.name.startswith("test_"):
            module = importlib.import_module(f"tests.notebooks.{info.name}")
            rows += [(row[0], row[1]) for row in getattr(module, "BAD_INPUTS", []) if ONLY is None or row[0] in ONLY]
    return rows


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory):
    """Every notebook module's ``BAD_INPUTS`` rows (notebook, override, ename, evalue, stops_at), each a real
    papermill run of the notebook's smoke profile with the override, run once per session two at a time as
    `make run` runs notebooks. Returns ``lookup(notebook, override) -> (result, out_dir)``."""
    import json

    from genhelpers.runs.runner import Job, run_jobs

    from .common import PROFILES

    root = tmp_path_factory.mktemp("bad-inputs")
    rows = _bad_input_rows()
    jobs = []
    for i, (name, override) in enumerate(rows):
        out = root / f"{i:03d}-{name}"
        out.mkdir()
        jobs.append(Job(name, "smoke", NOTEBOOKS / f"{name}.ipynb", {**PROFILES[name]["smoke"], **override}, out))
    results = run_jobs(jobs, workers=2, progress=lambda *a: None)
    found = {(name, json.dumps(override, sort_keys=True)): (result, job.out_dir)
             for (name, override), job, result in zip(rows, jobs, results, strict=True)}
    return lambda name, override: found[(name, json.dumps(override, sort_keys=True))]
