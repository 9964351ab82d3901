"""Timings of the CPU smoke tier, written to benchmarks/results.json (never asserted in tests).

1. wall time of the smoke tier as `make run` executes it (`genhelpers run --profile smoke --workers N`), for
   N = 1 and 2, with a cold twin cache (first run on a machine: twins are built) and warm (median of the
   following runs);
2. the overhead of genhelpers.load over a bare DiffusionPipeline.from_pretrained of the same tiny twin,
   in one warm process, alternating the two, median of several runs each.
Usage: python benchmarks/bench_smoke.py [--runs N] [--loads N] [--workers 1 2]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"


def smoke_tier(runs: int, workers: int) -> dict:
    """Cold (twins built) then ``runs`` warm runs of the smoke tier with ``workers`` parallel kernels, each run
    in a fresh output folder seeded with the previous report (so longest-first ordering applies, as in make run)."""
    walls, previous = [], None
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "GENHELPERS_CACHE": cache}
        for i in range(runs + 1):
            with tempfile.TemporaryDirectory() as out:
                if previous:
                    (Path(out) / "report.json").write_text(previous)
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "genhelpers.cli", "run", "--profile", "smoke", "--force",
                                "--workers", str(workers), "--out", out], env=env, check=True, capture_output=True)
                walls.append(time.perf_counter() - t0)
                previous = (Path(out) / "report.json").read_text()
                report = json.loads(previous)
            print(f"  {workers} worker(s), run {i + 1}: {walls[-1]:.1f} s ({'cold' if i == 0 else 'warm'} twin cache)")
    return {"workers": workers,
            "notebooks": [r["notebook"] for r in report["results"]],
            "cold_cache_s": round(walls[0], 2),
            "warm_median_s": round(statistics.median(walls[1:]), 2),
            "warm_runs_s": [round(w, 2) for w in walls[1:]],
            "per_notebook_s": {r["notebook"]: r["duration_s"] for r in report["results"]},
            "peak_host_mib": {r["notebook"]: r.get("host_peak_mib") for r in report["results"]}}


def load_overhead(n: int) -> dict:
    os.environ["HF_HUB_OFFLINE"] = "1"
    import diffusers
    import torch
    import transformers

    import genhelpers
    from genhelpers.platform.runtime import detect
    from genhelpers.twins import registry

    diffusers.utils.logging.disable_progress_bar()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(2)
    rt = detect(threads=2)
    folder = registry.build("sdxl-base")
    genhelpers.load("tiny:sdxl-base", rt, quiet=True)  # warm imports and file cache for both
    diffusers.DiffusionPipeline.from_pretrained(folder)
    ours, bare = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        genhelpers.load("tiny:sdxl-base", rt, quiet=True)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        diffusers.DiffusionPipeline.from_pretrained(folder)
        bare.append(time.perf_counter() - t0)
    m_ours, m_bare = statistics.median(ours), statistics.median(bare)
    return {"runs": n, "genhelpers_load_median_s": round(m_ours, 4), "bare_from_pretrained_median_s": round(m_bare, 4),
            "ratio": round(m_ours / m_bare, 2), "overhead_ms": round((m_ours - m_bare) * 1000, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--loads", type=int, default=15)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    a = ap.parse_args()
    from genhelpers.outputs.media import versions
    from genhelpers.platform.runtime import detect

    print("smoke tier …")
    smoke = {f"workers_{w}": smoke_tier(a.runs, w) for w in a.workers}
    print("load overhead …")
    load = load_overhead(a.loads)
    result = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}  # other benchmarks' sections stay
    result.update({"date": dt.date.today().isoformat(), "machine": detect().summary(), "cpu_count": os.cpu_count(),
                   "versions": versions(), "smoke_tier": smoke, "load_overhead": load})
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
