"""Training time and measured quality of the classroom notebooks with their default parameters (the setup a
class runs), merged into benchmarks/results.json under "classroom". Never asserted in tests.

Usage: python benchmarks/bench_classroom.py
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent / "notebooks"
RESULTS = HERE / "results.json"


def main():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(HERE.parent))
    from genhelpers.runs import run_notebook

    out = {"date": dt.date.today().isoformat(), "parameters": "notebook defaults (widgets off)"}
    with tempfile.TemporaryDirectory() as tmp:
        r = run_notebook(NOTEBOOKS / "diffusion_from_scratch.ipynb", {"widgets": False}, tmp)
        side = json.loads((Path(tmp) / "diffusion_from_scratch" / "samples_000.json").read_text())
        out["diffusion_from_scratch"] = {
            "status": r["status"], "notebook_s": r["duration_s"], "train_steps": side["parameters"]["train_steps"],
            "train_s": side["timings"]["train_s"], **side["generation"]}
        r = run_notebook(NOTEBOOKS / "clip.ipynb", {"clip_model": "tiny:clip-vit-large-patch14"}, tmp)
        side = json.loads((Path(tmp) / "clip" / "heldout_digits_000.json").read_text())
        out["clip"] = {"status": r["status"], "notebook_s": r["duration_s"],
                       "train_steps": side["parameters"]["train_steps"], "train_s": side["timings"]["train_s"],
                       "zero_shot_accuracy": side["generation"]["zero_shot_accuracy"],
                       "note": "part (a) used the CLIP twin: no hub here"}
        r = run_notebook(NOTEBOOKS / "clip_filtering.ipynb", {"clip_model": "tiny:clip-vit-large-patch14",
                                                              "widgets": False}, tmp)
        folder = Path(tmp) / "clip_filtering"
        hist = json.loads((folder / "score_histogram_000.json").read_text())
        out["clip_filtering"] = {
            "status": r["status"], "notebook_s": r["duration_s"], "train_steps": hist["parameters"]["train_steps"],
            "train_s": hist["timings"]["train_s"], "zero_shot_accuracy": hist["generation"]["zero_shot_accuracy"],
            **json.loads((folder / "threshold_curve_000.json").read_text())["generation"],
            **json.loads((folder / "lowest_aesthetic_000.json").read_text())["generation"]}
        r = run_notebook(NOTEBOOKS / "video_clip.ipynb", {"xclip_model": "tiny:xclip-base-patch32",
                                                          "clip_model": "tiny:clip-vit-large-patch14",
                                                          "widgets": False}, tmp)
        side = json.loads((Path(tmp) / "video_clip" / "alpha_curve_000.json").read_text())
        out["video_clip"] = {"status": r["status"], "notebook_s": r["duration_s"],
                             "clip_steps": side["parameters"]["clip_steps"],
                             "video_steps": side["parameters"]["video_steps"], **side["timings"],
                             **side["generation"]}
        r = run_notebook(NOTEBOOKS / "motion_retrieval.ipynb", {"widgets": False}, tmp)
        folder = Path(tmp) / "motion_retrieval"
        loss = json.loads((folder / "loss_curve_000.json").read_text())
        out["motion_retrieval"] = {
            "status": r["status"], "notebook_s": r["duration_s"], "train_steps": loss["parameters"]["train_steps"],
            "train_motions": loss["parameters"]["train_motions"], **loss["timings"],
            **json.loads((folder / "retrieval_scores_000.json").read_text())["generation"]}
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["classroom"] = out
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
