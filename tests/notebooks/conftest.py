"""Every papermill run the notebook tests read happens once per session, in ONE batch, two at a time as `make run`
runs notebooks (the runner gives each kernel its share of the cores), the longest first so that no core idles at
the end: every notebook's smoke profile (the `collection`), every module's `RUNS` (a notebook with other inputs)
and every module's `BAD_INPUTS` rows. Each test then reads its run's executed copy and outputs (issue 20, 30).
The batch starts as soon as the tests are collected and runs in a thread while every other test runs: the
notebook tests come last, when it is (nearly) done — the other tests leave a core idle for most of their time
(package installs, kernels starting, timeouts awaited), and the batch fills it."""
import importlib
import json
import os
import pkgutil
import tempfile
import threading
from pathlib import Path

import pytest

from ..conftest import _ROOT as _SESSION_TMP
from ..conftest import NOTEBOOKS
from .common import ALL, BATCH_THREADS, PROFILES

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


class _Background:
    """The session's batch, run in a thread beside the other tests: started when collection is done (the notebook
    tests are moved to the end, so every other test runs while the batch does), then nbval's re-executions. The
    workers get the environment of the moment it starts (tests change os.environ meanwhile), and no torch runs in
    the thread (the prepare steps, which may build twins, run before it starts): the tests beside it see the same
    random numbers as without it."""

    def __init__(self):
        self.started, self.thread, self.error, self.batch, self.nbval = False, None, None, None, {}
        self.stop = threading.Event()

    def start(self):
        if self.started:
            return
        self.started = True
        from genhelpers.platform.runtime import MAX_THREADS

        try:
            keys, jobs, root = self._jobs()
        except Exception as e:  # a table or a prepare step failed: the notebook tests say so, the others run
            self.error = e
            return
        # the batch's kernels take the cores' share the runner gives two workers; so does this process meanwhile
        # (torch threads on more threads than cores make every process many times slower)
        os.environ[MAX_THREADS] = str(BATCH_THREADS)
        import torch

        torch.set_num_threads(min(torch.get_num_threads(), BATCH_THREADS))
        environ = {**os.environ, "OMP_NUM_THREADS": str(BATCH_THREADS)}
        self.thread = threading.Thread(target=self._run, args=(keys, jobs, environ, root), daemon=True,
                                       name="notebook-batch")
        self.thread.start()

    @staticmethod
    def _jobs():
        """The batch's jobs (the prepare steps of ``RUNS`` rows done here, in the calling thread)."""
        from genhelpers.runs.runner import Job

        root = Path(tempfile.mkdtemp(prefix="notebook-runs-", dir=_SESSION_TMP))
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
        return keys, jobs, root

    def _run(self, keys, jobs, environ, root):
        from genhelpers.runs.runner import run_jobs

        try:
            results = run_jobs(jobs, workers=2, progress=lambda *a: None, environ=environ, stop=self.stop)
            self.batch = {key: (result, job.out_dir) for key, job, result in zip(keys, jobs, results, strict=True)}
            if not self.stop.is_set():
                self.nbval = _nbval_start(self.batch, root / "nbval", environ)
        except BaseException as e:  # given to the first test that reads the batch
            self.error = e

    def result(self):
        self.start()  # when collection did not start it (a plugin ordered the hooks otherwise)
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise RuntimeError("the session's notebook batch did not complete") from self.error
        return self.batch

    def finish(self):
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        for proc in self.nbval.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


_BACKGROUND = _Background()


@pytest.hookimpl(trylast=True)  # after -k / -m have deselected what will not run
def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    ours = [item for item in items if here in item.path.parents]
    items[:] = [item for item in items if item not in ours] + ours
    if not config.option.collectonly and any("batch" in item.fixturenames for item in ours):
        _BACKGROUND.start()


def pytest_sessionfinish(session):
    _BACKGROUND.finish()


@pytest.fixture(scope="session")
def batch():
    """{("collection", notebook) | ("run", key) | ("bad", notebook, override json): (result, output folder)}."""
    return _BACKGROUND.result()


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


def _nbval_start(batch, root, environ):
    """Start nbval's re-executions of the executed copies where cross-kernel determinism is the point (sdxl's
    images, the clip classroom's seeded training), and of an sdxl copy whose checked summary was changed (nbval
    must fail it), all at once (those whose notebook is in the batch). {"sdxl" | "clip" | "sdxl-tampered": Popen}."""
    import nbformat

    from .common import nbval_start

    root.mkdir(parents=True)
    started = {}
    if ("collection", "clip") in batch:
        out = batch[("collection", "clip")][1]
        started["clip"] = nbval_start(out / "clip.ipynb", root / "clip", environ)
    if ("collection", "sdxl") in batch:
        out = batch[("collection", "sdxl")][1]
        nb = nbformat.read(out / "sdxl.ipynb", as_version=4)
        cell = next(c for c in nb.cells if c.source.startswith("# NBVAL_CHECK_OUTPUT"))
        cell.outputs[0]["text"] = cell.outputs[0]["text"].replace("64x64", "65x64")
        injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
        injected.source = injected.source.replace(str(out), str(root / "tampered-out"))  # its own output folder
        nbformat.write(nb, root / "tampered.ipynb")
        started["sdxl"] = nbval_start(out / "sdxl.ipynb", root / "sdxl", environ)
        started["sdxl-tampered"] = nbval_start(root / "tampered.ipynb", root / "tampered", environ)
    return started


@pytest.fixture(scope="session")
def nbval_runs(batch):
    """The three nbval re-executions started when the batch was done (_nbval_start), finished:
    {"sdxl" | "clip" | "sdxl-tampered": CompletedProcess}."""
    import subprocess

    done = {}
    for key, proc in _BACKGROUND.nbval.items():
        stdout, stderr = proc.communicate()
        done[key] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return done
