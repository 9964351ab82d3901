"""How long the loop takes, from a fresh clone: written to benchmarks/results.json under "suite" (never asserted).

1. ``make setup`` (venv, torch, genhelpers[dev]) and ``make test`` timed apart, in a fresh clone of HEAD;
2. the ten slowest tests (pytest's ``--durations``) and the time per test file;
3. ``make run`` warm (the second run in the same clone) and, per notebook, the seconds of its set-up cells (the
   install cell, parameters, imports up to genhelpers.runtime) vs the rest (cell compute), from papermill's
   per-cell durations; the notebook's total in the report also counts the kernel start;
4. ``make test`` again in the same clone: warm (twins and the Kaggle-image rehearsal's environment and wheelhouse
   already built in .cache/, as a CI that restores that folder would have them). The budget is judged on the
   fresh clone's (cold) figure.
Usage: python benchmarks/bench_suite.py [--keep DIR]   (takes ~35 minutes)
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results.json"


def timed(cmd: list[str], cwd: Path, env_extra: dict | None = None) -> tuple[float, str, int]:
    import os

    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env_extra or {})})
    return round(time.perf_counter() - t0, 1), r.stdout + r.stderr, r.returncode


def durations(output: str) -> tuple[list[dict], dict[str, float]]:
    """pytest --durations=0 lines -> the ten slowest and the seconds per test file."""
    rows = []
    for m in re.finditer(r"^([\d.]+)s (call|setup|teardown)\s+(\S+)", output, flags=re.M):
        rows.append({"seconds": float(m.group(1)), "phase": m.group(2), "test": m.group(3)})
    per_file = defaultdict(float)
    for r in rows:
        per_file[r["test"].split("::")[0]] += r["seconds"]
    slowest = sorted(rows, key=lambda r: -r["seconds"])[:10]
    return slowest, {k: round(v, 1) for k, v in sorted(per_file.items(), key=lambda kv: -kv[1])}


def last_summary(output: str) -> str:
    """pytest's closing line ("1755 passed in 673.68s"), or ""."""
    return next((ln for ln in output.splitlines()[::-1] if " passed" in ln or " failed" in ln), "").strip()


def notebook_split(report: dict, folder: Path) -> dict:
    """Per notebook: set-up cells (the install cell, parameters, imports: up to and including the one that calls
    genhelpers.runtime) vs the rest (cell compute), from papermill's per-cell durations, and the time outside any
    cell (worker and kernel start, kernel shutdown)."""
    import nbformat

    out = {}
    for r in report.get("results", []):
        cells = r.get("cells") or []
        nb = nbformat.read(folder / r["executed"], as_version=4)
        first = next((c["index"] for c in cells if "runtime(" in nb.cells[c["index"]].source), None)
        start = next((i for i, c in enumerate(cells) if c["index"] == first), 2)
        setup = sum(c["duration_s"] for c in cells[: start + 1])
        compute = sum(c["duration_s"] for c in cells[start + 1:])
        out[r["notebook"]] = {"total_s": r.get("duration_s"), "setup_cells_s": round(setup, 1),
                              "cell_compute_s": round(compute, 1),
                              # the worker's start, the kernel's start and shutdown, papermill's own work
                              "outside_cells_s": round((r.get("duration_s") or 0) - setup - compute, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="clone into this folder and keep it (default: a temporary folder)")
    a = ap.parse_args()
    where = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bench-suite-"))
    if where.exists():
        shutil.rmtree(where)
    subprocess.run(["git", "clone", "-q", str(REPO), str(where)], check=True)
    setup_s, _, rc = timed(["make", "setup"], where)
    assert rc == 0, "make setup failed"
    test_s, output, rc = timed(["make", "test"], where, {"PYTEST_ADDOPTS": "--durations=0"})
    slowest, per_file = durations(output)
    timed(["make", "run"], where)  # cold: builds twins
    run_s, _, rc_run = timed(["make", "run"], where)
    report = json.loads((where / "outputs" / "smoke" / "report.json").read_text())
    warm_s, warm_output, warm_rc = timed(["make", "test"], where)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results["suite"] = {
        "date": dt.date.today().isoformat(), "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip(),
        "make_setup_s": setup_s, "make_test_s": test_s, "make_test_exit": rc, "pytest_summary": last_summary(output),
        "make_test_warm_s": warm_s, "make_test_warm_exit": warm_rc, "pytest_summary_warm": last_summary(warm_output),
        "make_run_warm_s": run_s, "make_run_exit": rc_run, "slowest_tests": slowest, "seconds_per_file": per_file,
        "notebooks": notebook_split(report, where / "outputs" / "smoke"),
        "budgets": {"make_test_s": 720, "make_run_warm_s": 240, "smoke_notebook_s": 30},
    }
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results["suite"], indent=1)[:3000])
    if not a.keep:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
