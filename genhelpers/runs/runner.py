"""Execute notebooks × profiles with papermill, several at a time, and collect one result per run.

Each notebook runs in its own worker process (``python -m genhelpers.runs.worker``) that starts the kernel, so
the runner can watch it: it samples the memory of the worker and its kernel, stops it at the per-notebook
timeout, and notices when it dies. Worker slots can be pinned to GPUs (``CUDA_VISIBLE_DEVICES``).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..outputs.media import versions
from ..outputs.widgets import HEADLESS
from ..platform.runtime import MAX_THREADS
from . import faults
from .report import SCHEMA, write_report


def load_profiles(path: str | Path) -> dict:
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping notebook -> profile -> parameters")
    return data


def profile_names(profiles: dict) -> list[str]:
    return sorted({p for per_nb in profiles.values() for p in per_nb})


def output_files(folder: Path) -> list[str]:
    """The files a notebook wrote under ``folder`` (hidden ones left out), relative, sorted."""
    if not folder.is_dir():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def cell_durations(executed: Path) -> list[dict]:
    """Seconds per code cell, as papermill records them in the executed notebook (cells that ran)."""
    import nbformat

    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:  # missing or cut off mid-write
        return []
    out = []
    for i, cell in enumerate(nb.cells):
        pm = cell.metadata.get("papermill", {})
        if cell.cell_type == "code" and pm.get("duration") is not None:
            out.append({"index": i, "duration_s": round(pm["duration"], 3), "status": pm.get("status")})
    return out


def sidecar_facts(folder: Path) -> dict:
    """What the notebook's own sidecars recorded: peak GPU memory (MiB per GPU), the kernel's peak RSS and the
    package versions the kernel really imported."""
    gpu, host, found = None, None, None
    for side in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        try:
            meta = json.loads(side.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict):
            continue
        mem = meta.get("memory") or {}
        if mem.get("gpu_peak_mib"):
            gpu = [max(a, b) for a, b in zip(gpu, mem["gpu_peak_mib"], strict=False)] if gpu else mem["gpu_peak_mib"]
        if mem.get("host_peak_mib"):
            host = max(host or 0, mem["host_peak_mib"])
        found = found or meta.get("versions")
    return {"gpu_peak_mib": gpu, "kernel_host_peak_mib": host, "versions": found}


# A kernel launched beside others can die before it answers its first message, before any cell runs (the
# jupyter_client/papermill reports of "Kernel died before replying to kernel_info" under parallel launches: the
# ports the client picked and released can be taken before the new kernel binds them). Such a start is retried;
# a kernel that dies at every start is still reported.
KERNEL_START_ATTEMPTS = 3


def _died_starting(error: Exception) -> bool:
    return "before replying to kernel_info" in str(error)


NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # a notebook's name: never a path


# credentials a notebook never needs (the kaggle client's): kept out of every kernel's environment
KERNEL_ENV_DROP = ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR")


def check_names(names) -> None:
    """Notebook names (profiles.yaml keys, a Kaggle build's manifest) name a folder and a file, never a path."""
    for name in names:
        if not isinstance(name, str) or not NAME.match(name):
            raise ValueError(f"notebook name {name!r} must be letters, digits, '_' or '-' only: it names a folder "
                             f"and a file, never a path")


def check_parameter_names(notebook: str, profile: str, params: dict) -> None:
    """papermill writes ``name = value`` into the notebook: a name must be a Python identifier, not code."""
    bad = [k for k in params if not (isinstance(k, str) and k.isidentifier())]
    if bad:
        raise ValueError(f"profiles.yaml: {notebook}/{profile} sets {bad!r}, which are not Python names: a "
                         f"parameter name is written into the notebook as code")


def clear(folder: Path, root: Path) -> None:
    """Remove ``folder`` (a run's own output folder) before it is written again: only a real folder inside
    ``root`` — a symlink or anything outside is refused, and a removal that fails says why."""
    if folder.is_symlink() or not folder.resolve().is_relative_to(root.resolve()):
        raise RuntimeError(f"{folder} is a link or lies outside {root}: refusing to delete it (remove it yourself "
                           f"if it is yours)")
    if folder.exists():
        shutil.rmtree(folder)



def run_notebook(notebook: str | Path, parameters: dict, out_dir: str | Path, timeout: int | None = None,
                 kernel: str = "python3") -> dict:
    """Run one notebook with papermill in this process (``timeout``: per cell). Outputs go to
    ``out_dir/<name>/``, the executed notebook beside it. A failed run's files are listed as partial."""
    import papermill as pm

    notebook = Path(notebook)
    name = notebook.stem
    out_dir = Path(out_dir)
    files_dir = out_dir / name
    executed = out_dir / f"{name}.ipynb"
    params = {**parameters, "output_dir": str(files_dir.resolve())}
    result = {"notebook": name, "parameters": params, "executed": executed.name}
    t0 = time.perf_counter()
    previous = os.environ.get(HEADLESS)
    os.environ[HEADLESS] = "1"  # the kernel inherits it: interactive panels stay hidden
    held = {k: os.environ.pop(k) for k in KERNEL_ENV_DROP if k in os.environ}  # nor does it get the Kaggle keys
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        clear(files_dir, out_dir)  # a previous run's files must not pass for this run's
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            try:
                pm.execute_notebook(str(notebook), str(executed), parameters=params, kernel_name=kernel,
                                    cwd=str(notebook.parent), progress_bar=False, execution_timeout=timeout)
                break
            except RuntimeError as e:  # see KERNEL_START_ATTEMPTS: nothing of the notebook ran, so run it again
                if not _died_starting(e) or attempt == KERNEL_START_ATTEMPTS:
                    raise
                result["kernel_start_retries"] = attempt
                clear(files_dir, out_dir)
        result["status"] = "passed"
    except pm.PapermillExecutionError as e:
        result["status"] = "failed"
        result["error"] = faults.describe(e.ename, e.evalue, cell=e.cell_index, traceback=faults.plain(e.traceback))
    except Exception as e:  # kernel died, cell timeout, bad notebook: recorded, the next notebook still runs
        ename = type(e).__name__
        status = "kernel died" if ename == "DeadKernelError" else "timeout" if "Timeout" in ename else "failed"
        result["status"] = status
        result["error"] = faults.describe(ename, str(e), status)
    finally:
        os.environ.update(held)
        if previous is None:
            os.environ.pop(HEADLESS, None)
        else:
            os.environ[HEADLESS] = previous
    result["duration_s"] = round(time.perf_counter() - t0, 2)
    finish(result, out_dir)
    return result


def finish(result: dict, out_dir: Path) -> dict:
    """Add what the files tell: per-cell durations, sidecar facts, outputs (or partial files)."""
    name = result["notebook"]
    result["cells"] = cell_durations(out_dir / f"{name}.ipynb")
    facts = sidecar_facts(out_dir / name)
    result["gpu_peak_mib"] = facts["gpu_peak_mib"]
    result["kernel_host_peak_mib"] = facts["kernel_host_peak_mib"]
    result["versions"] = facts["versions"] or versions()
    files = output_files(out_dir / name)
    # a failed run's files are partial: listed apart, never presented as outputs
    result["outputs" if result["status"] == "passed" else "partial_files"] = files
    return result


# --------------------------------------------------------------------------------------- parallel runs
@dataclass
class Job:
    notebook: str
    profile: str
    path: Path  # the notebook file
    parameters: dict
    out_dir: Path
    subdir: str = ""  # where out_dir lies within the report's folder ("" or "<profile>/")

    @property
    def key(self) -> str:
        return f"{self.profile}/{self.notebook}"


def _tree(pid: int):
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _rss_mib(procs) -> float:
    import psutil

    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def _kill(procs) -> None:
    import psutil

    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)


class _Running:
    def __init__(self, job: Job, slot: int, gpu: str | None, cell_timeout: int | None, threads: int | None = None,
                 environ: dict | None = None, cwd: str | None = None):
        self.job, self.slot, self.gpu = job, slot, gpu
        self.t0 = time.perf_counter()
        self.peak = 0.0
        self.spec = Path(tempfile.mkstemp(prefix=".job-", suffix=".json", dir=job.out_dir)[1])
        self.result_file = self.spec.with_suffix(".result.json")
        self.spec.write_text(json.dumps({"notebook": str(job.path), "parameters": job.parameters,
                                         "out_dir": str(job.out_dir), "timeout": cell_timeout,
                                         "result": str(self.result_file)}))
        env = dict(os.environ if environ is None else environ)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        if threads:  # parallel kernels share the cores: more threads than cores makes each many times slower
            env.update({MAX_THREADS: str(threads), "OMP_NUM_THREADS": str(threads)})
        self.log = open(job.out_dir / f".{job.notebook}.worker.log", "w")  # noqa: SIM115 (closed in done())
        self.proc = subprocess.Popen([sys.executable, "-m", "genhelpers.runs.worker", str(self.spec)], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
        self.procs = []

    def sample(self) -> None:
        procs = _tree(self.proc.pid)
        if procs:
            self.procs = procs
            self.peak = max(self.peak, _rss_mib(procs))

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def stop(self) -> None:
        _kill(_tree(self.proc.pid) or self.procs)
        self.proc.wait()

    def abandon(self) -> None:
        """Stopped with no result wanted (the whole run was stopped): nothing of it is left running or open."""
        self.stop()
        self.log.close()
        for f in (self.spec, self.result_file):
            f.unlink(missing_ok=True)

    def done(self, timed_out: bool) -> dict:
        self.log.close()
        job = self.job
        if timed_out:
            result = {"notebook": job.notebook, "status": "timeout",
                      "error": faults.describe("NotebookTimeout", f"stopped after {self.elapsed:.0f} s (the "
                                               f"per-notebook timeout)", "timeout")}
        elif self.result_file.is_file():
            result = json.loads(self.result_file.read_text())
        else:  # the worker itself was killed (e.g. by the kernel's out-of-memory killer)
            log = (job.out_dir / f".{job.notebook}.worker.log").read_text(errors="replace")[-1500:]
            result = {"notebook": job.notebook, "status": "kernel died",
                      "error": faults.describe("WorkerDied", f"the notebook's process ended with exit code "
                                               f"{self.proc.returncode} before reporting", "kernel died",
                                               traceback=log)}
        for f in (self.spec, self.result_file):
            f.unlink(missing_ok=True)
        result.update(profile=job.profile, executed=f"{job.subdir}{job.notebook}.ipynb",
                      parameters={**job.parameters, "output_dir": str((job.out_dir / job.notebook).resolve())},
                      duration_s=round(self.elapsed, 2), host_peak_mib=round(self.peak), gpu=self.gpu,
                      worker=self.slot)
        if timed_out or "cells" not in result:
            finish(result, job.out_dir)
        return result


class RunStopped(RuntimeError):
    """``run_jobs`` was told to stop (its ``stop`` event) before every job had run."""


def run_jobs(jobs: list[Job], workers: int = 1, timeout: float | None = None, cell_timeout: int | None = None,
             gpus: list[str] | None = None, progress=print, poll_s: float = 0.2, environ: dict | None = None,
             stop=None) -> list[dict]:
    """Run ``jobs`` with up to ``workers`` at a time; each slot is pinned to ``gpus[slot % len(gpus)]`` when
    GPUs are given. ``timeout``: seconds per notebook. With several workers the CPU cores are shared out
    (each kernel's torch threads are capped). Results come back in the order of ``jobs``.

    ``environ`` and the working folder are read once, here: every worker starts with them even if this runs in a
    thread beside code that changes ``os.environ`` or the folder. ``stop`` (a ``threading.Event``): once set, the
    running notebooks are stopped and ``RunStopped`` is raised. However this call ends early (Ctrl-C too), no
    worker or kernel it started is left running."""
    environ, cwd = dict(os.environ if environ is None else environ), os.getcwd()
    pending = list(enumerate(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
    running: dict[int, tuple[int, _Running]] = {}  # slot -> (job index, run)
    results: dict[int, dict] = {}
    total = len(jobs)
    try:
        while pending or running:
            if stop is not None and stop.is_set():
                raise RunStopped(f"stopped with {len(results)} of {total} notebook runs done")
            for slot in range(max(1, workers)):
                if slot not in running and pending:
                    i, job = pending.pop(0)
                    job.out_dir.mkdir(parents=True, exist_ok=True)
                    gpu = gpus[slot % len(gpus)] if gpus else None
                    running[slot] = (i, _Running(job, slot, gpu, cell_timeout, threads, environ, cwd))
            time.sleep(poll_s)
            for slot, (i, run) in list(running.items()):
                run.sample()
                timed_out = timeout is not None and run.elapsed > timeout and run.proc.poll() is None
                if timed_out:
                    run.stop()
                if run.proc.poll() is None:
                    continue
                results[i] = run.done(timed_out)
                del running[slot]
                r = results[i]
                others = ", ".join(sorted(v.job.notebook for _, v in running.values())) or "-"
                why = f" · {r['error']['class']}: {r['error']['evalue'][:120]}" if r.get("error") else ""
                progress(f"[{len(results)}/{total}] {r['status']:<11} {run.job.key} in {r['duration_s']:.1f} s, "
                         f"peak {r['host_peak_mib']} MiB{why} · running: {others}")
    finally:
        for _, run in running.values():
            run.abandon()
    return [results[i] for i in range(total)]


# ------------------------------------------------------------------------------------------ collection
def plan_jobs(profiles: dict, profile_list: list[str], notebooks_dir: Path, out_dir: Path, only=None, skip=None,
              overrides: dict | None = None) -> tuple[list[Job], list[dict]]:
    """The jobs to run, and a 'skipped' result for each notebook left out (by --skip or for lack of the
    profile). One profile writes into ``out_dir``; several into ``out_dir/<profile>``."""
    known = profile_names(profiles)
    for profile in profile_list:
        if profile not in known:
            raise ValueError(f"--profile {profile!r} is not defined in profiles.yaml; known: {', '.join(known)}")
    for flag, names in (("--only", only), ("--skip", skip)):
        unknown = sorted(set(names or ()) - set(profiles))
        if unknown:
            raise ValueError(f"{flag} {', '.join(unknown)}: no such notebook in profiles.yaml; "
                             f"known: {', '.join(profiles)}")
    check_names(profiles)
    jobs, skipped = [], []
    for profile in profile_list:
        where = out_dir if len(profile_list) == 1 else out_dir / profile
        for name in profiles:
            if only and name not in only:
                continue
            reason = ("--skip" if skip and name in skip else
                      None if profile in profiles[name] else f"no '{profile}' parameters in profiles.yaml")
            if reason:
                skipped.append({"notebook": name, "profile": profile, "status": "skipped", "reason": reason,
                                "duration_s": 0.0})
                continue
            check_parameter_names(name, profile, {**profiles[name][profile], **(overrides or {})})
            jobs.append(Job(name, profile, notebooks_dir / f"{name}.ipynb",
                            {**profiles[name][profile], **(overrides or {})}, where,
                            "" if len(profile_list) == 1 else f"{profile}/"))
    return jobs, skipped


def _last_results(out_dir: Path) -> list[dict]:
    """The results of the last report in ``out_dir`` (each with its profile), or []."""
    try:
        report = json.loads((out_dir / "report.json").read_text())
    except (OSError, ValueError):
        return []
    return [{**r, "profile": r.get("profile", report.get("profile"))} for r in report.get("results", [])]


def _previous(out_dir: Path) -> dict:
    """Passed results of the last report in ``out_dir`` whose outputs are all still there, by profile/notebook."""
    out = {}
    for r in _last_results(out_dir):
        profile = r["profile"]
        folder = Path(r.get("parameters", {}).get("output_dir", ""))
        if r.get("status") == "passed" and all((folder / o).is_file() for o in r.get("outputs", [])):
            out[f"{profile}/{r['notebook']}"] = r
    return out


def _same_parameters(old: dict, job: Job) -> bool:
    strip = lambda p: {k: v for k, v in p.items() if k != "output_dir"}  # noqa: E731
    return strip(old.get("parameters", {})) == strip(job.parameters)


def detect_gpus() -> list[str]:
    """GPU indices to pin workers to: CUDA_VISIBLE_DEVICES when set, else every GPU torch sees."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


def run_collection(profile, notebooks_dir: str | Path, out_dir: str | Path, only=None, timeout=None,
                   profiles_file: str | Path | None = None, overrides: dict | None = None, workers: int = 1,
                   skip=None, force: bool = True, cell_timeout=None, gpus: list[str] | None = None,
                   progress=print) -> dict:
    """Run the notebooks of one or several profiles (``profile``: a name or a list) and write the report
    (JSON, Markdown, HTML, JUnit) into ``out_dir``. ``timeout``: seconds per notebook. Without ``force``,
    notebooks that passed in the previous report there (same parameters, outputs present) are not run again."""
    notebooks_dir, out_dir = Path(notebooks_dir), Path(out_dir)
    profiles = load_profiles(profiles_file or notebooks_dir / "profiles.yaml")
    profile_list = [profile] if isinstance(profile, str) else list(profile)
    jobs, skipped = plan_jobs(profiles, profile_list, notebooks_dir, out_dir, only, skip, overrides)
    # longest first (durations of the last run here), so a long notebook does not start last and run alone
    last = {f"{r.get('profile')}/{r['notebook']}": r.get("duration_s") or 0.0 for r in _last_results(out_dir)}
    jobs.sort(key=lambda j: -last.get(j.key, float("inf")))
    reused = {}
    if not force:
        previous = _previous(out_dir)
        for job in list(jobs):
            old = previous.get(job.key)
            if old and _same_parameters(old, job):
                reused[job.key] = {**old, "profile": job.profile, "resumed": True}
                jobs.remove(job)
        if reused:
            progress(f"resume: {len(reused)} notebook(s) passed in the previous run and are kept "
                     f"({', '.join(reused)}); --force runs them again")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    gpus = detect_gpus() if gpus is None else gpus
    progress(f"running {len(jobs)} notebook(s) with {workers} worker(s)"
             + (f" on GPU(s) {', '.join(gpus)}" if gpus else " on the CPU")
             + (f", {timeout:g} s each at most" if timeout else ""))
    ran = run_jobs(jobs, workers=workers, timeout=timeout, cell_timeout=cell_timeout, gpus=gpus, progress=progress)
    by_key = {f"{r['profile']}/{r['notebook']}": r for r in [*ran, *reused.values(), *skipped]}
    order = [f"{p}/{n}" for p in profile_list for n in profiles if f"{p}/{n}" in by_key]
    results = [by_key[k] for k in order]
    report = {
        "schema": SCHEMA,
        "profile": profile_list[0] if len(profile_list) == 1 else profile_list,
        "profiles": profile_list,
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - t0, 2),
        "workers": workers,
        "gpus": gpus,
        "versions": versions(),
        "summary": summary(results),
        "results": results,
    }
    write_report(report, out_dir)
    return report


STATUSES = ("passed", "failed", "timeout", "kernel died", "skipped")


def summary(results: list[dict]) -> dict:
    return {s: sum(r["status"] == s for r in results) for s in STATUSES}


def failed(report: dict) -> int:
    """How many notebooks did not pass (skipped ones do not count)."""
    s = report["summary"]
    return sum(s.get(k, 0) for k in ("failed", "timeout", "kernel died"))


__all__ = ["Job", "RunStopped", "load_profiles", "run_collection", "run_jobs", "run_notebook"]
