"""The runner and the report, on small test-only notebooks: one that writes files, and one that can be told to
fail in each way a real notebook fails (exception, killed kernel, hang, out of memory, import, missing weights)."""
import json
import xml.etree.ElementTree as ET

import nbformat
import pytest

from genhelpers import cli
from genhelpers.runs import compare, run_collection
from genhelpers.runs.faults import classify, signature

FAULTY = """
import os, pathlib, signal, time
p = pathlib.Path(output_dir); p.mkdir(parents=True, exist_ok=True)
(p / "seen.txt").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "-") + f" {time.time()}")
if fault == "raise":
    raise ValueError(f"value={value} is wrong")
if fault == "kill":  # the kernel dies as under the kernel's OOM killer
    os.kill(os.getpid(), signal.SIGKILL)
if fault == "hang":
    time.sleep(600)
if fault == "nap":
    time.sleep(2)
if fault == "oom":
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 14.75 GiB total capacity)")
if fault == "import":
    import genhelpers_has_no_such_module  # noqa
if fault == "missing":
    from genhelpers.hub.weights import WeightsNotFound
    raise WeightsNotFound("Could not find weights for 'someone/model' (not in /kaggle/input)")
(p / "done.txt").write_text(f"{time.time()}")
"""

GOOD = """
import json, pathlib
from PIL import Image
p = pathlib.Path(output_dir); p.mkdir(parents=True, exist_ok=True)
(p / f'v{value}.txt').write_text('hi')
Image.new('RGB', (64, 48), (200, 30, 30)).save(p / 'picture_grid.png')
(p / 'picture_grid.json').write_text(json.dumps({'memory': {'gpu_peak_mib': [1234, 56], 'host_peak_mib': 300},
                                                 'versions': {'diffusers': '9.9'}}))
"""


def notebook(path, body, params="output_dir = 'out'\nvalue = 1\nfault = 'none'"):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def collection(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    notebook(nbs / "good.ipynb", GOOD)
    notebook(nbs / "bad.ipynb", FAULTY)
    (nbs / "profiles.yaml").write_text("good:\n  smoke: {value: 2}\nbad:\n  smoke: {value: 3, fault: raise}\n"
                                       "  other: {}\n")
    return nbs


def test_report_records_passes_and_failures(collection, tmp_path):
    out = tmp_path / "out"
    report = run_collection("smoke", collection, out)
    assert report["schema"] == 2 and report["summary"]["passed"] == 1 and report["summary"]["failed"] == 1
    good, bad = report["results"]
    assert (good["notebook"], good["status"]) == ("good", "passed")
    assert good["outputs"] == ["picture_grid.json", "picture_grid.png", "v2.txt"]
    assert good["gpu_peak_mib"] == [1234, 56] and good["versions"] == {"diffusers": "9.9"}  # from the sidecar
    assert good["host_peak_mib"] > 20 and good["cells"] and all(c["duration_s"] >= 0 for c in good["cells"])
    assert bad["status"] == "failed" and bad["error"]["ename"] == "ValueError"
    assert bad["error"]["class"] == "other" and len(bad["error"]["signature"]) == 10
    assert "value=3 is wrong" in bad["error"]["traceback"]
    # the index is into the executed notebook the report links, after papermill's injected-parameters cell
    assert bad["error"]["evalue"] == "value=3 is wrong" and bad["error"]["cell"] == 2
    assert bad["partial_files"] == ["seen.txt"] and "outputs" not in bad  # partial files are never results
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    md = (out / "report.md").read_text()
    assert "1 passed, 1 failed" in md and "| bad | smoke | failed |" in md and "ValueError: value=3 is wrong" in md
    page = (out / "report.html").read_text()
    assert page.count('<img src="data:image/') == 1 and "picture_grid.png" in page  # self-contained preview
    assert "value=3 is wrong" in page and "1,234 / 56" in page
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert suite.find("testcase[@name='bad']/failure").get("type") == "other"
    assert (out / "good.ipynb").is_file() and (out / "bad.ipynb").is_file()


def test_faults_are_classified_while_the_others_finish(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    faults = ["raise", "kill", "hang", "oom", "import", "missing", "none"]
    for f in faults:
        notebook(nbs / f"{f}.ipynb", FAULTY)
    (nbs / "profiles.yaml").write_text("".join(f"{f}:\n  smoke: {{fault: {f}}}\n" for f in faults))
    report = run_collection("smoke", nbs, tmp_path / "out", workers=2, timeout=15)
    got = {r["notebook"]: (r["status"], (r.get("error") or {}).get("class")) for r in report["results"]}
    assert got == {"raise": ("failed", "other"), "kill": ("kernel died", "kernel_died"),
                   "hang": ("timeout", "timeout"), "oom": ("failed", "out_of_memory"),
                   "import": ("failed", "import"), "missing": ("failed", "missing_weights"),
                   "none": ("passed", None)}
    for r in report["results"]:
        if r["status"] != "passed":  # what a failed notebook left is listed apart, never as its outputs
            assert "outputs" not in r and r["partial_files"] == ["seen.txt"]
    assert report["summary"] == {"passed": 1, "failed": 4, "timeout": 1, "kernel died": 1, "skipped": 0}
    hang = next(r for r in report["results"] if r["notebook"] == "hang")
    assert 15 <= hang["duration_s"] < 60 and hang["cells"] == [] or hang["cells"][-1]["index"] < 2
    suite = ET.parse(tmp_path / "out" / "junit.xml").getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("errors")) == ("4", "2")
    assert (tmp_path / "out" / "report.html").is_file() and not list((tmp_path / "out").glob(".job-*"))


def test_signatures_recognise_the_same_failure():
    a = signature("out_of_memory", "OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB at /a/b.py")
    b = signature("out_of_memory", "OutOfMemoryError", "CUDA out of memory. Tried to allocate 9.50 GiB at /c/d.py")
    assert a == b and len(a) == 10
    assert a != signature("out_of_memory", "RuntimeError", "CUDA out of memory. Tried to allocate 2.00 GiB")
    assert classify("HTTPError", "503 Server Error") == "network"
    assert classify("OSError", "We couldn't connect: Temporary failure in name resolution") == "network"
    assert classify("ValueError", "x is missing component(s) unet") == "missing_weights"
    assert classify("AssertionError", "") == "assertion" and classify("KeyError", "k") == "other"


def test_workers_run_together_each_pinned_to_its_gpu(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for name in ("a", "b"):
        notebook(nbs / f"{name}.ipynb", FAULTY)
    (nbs / "profiles.yaml").write_text("a:\n  smoke: {fault: nap}\nb:\n  smoke: {fault: nap}\n")
    report = run_collection("smoke", nbs, tmp_path / "out", workers=2, gpus=["0", "1"])
    assert [r["status"] for r in report["results"]] == ["passed", "passed"]
    spans = {}
    for r in report["results"]:
        seen, start = (tmp_path / "out" / r["notebook"] / "seen.txt").read_text().split()
        assert seen == r["gpu"]  # the kernel saw the GPU its worker was pinned to
        spans[r["notebook"]] = (float(start), float((tmp_path / "out" / r["notebook"] / "done.txt").read_text()))
    assert {r["gpu"] for r in report["results"]} == {"0", "1"}
    (a0, a1), (b0, b1) = spans["a"], spans["b"]
    assert a0 < b1 and b0 < a1  # the two naps overlapped: they really ran at the same time


def test_a_stopped_run_leaves_nothing_running(tmp_path, monkeypatch):
    """run_jobs in a thread (as the test suite runs its notebook batch beside the other tests): the workers start
    with the environment they were given, whatever the calling process sets meanwhile; once told to stop, the
    hanging notebook's worker and kernel are gone and RunStopped says how far it got."""
    import os
    import threading
    import time

    import psutil

    from genhelpers.runs.runner import Job, RunStopped, run_jobs

    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    jobs = []
    for name, fault in (("quick", "none"), ("hang", "hang")):
        notebook(nbs / f"{name}.ipynb", FAULTY)
        jobs.append(Job(name, "smoke", nbs / f"{name}.ipynb", {"fault": fault}, out))
    given = {**os.environ, "CUDA_VISIBLE_DEVICES": "7"}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # this process's, not the workers'
    stop, seen, finished = threading.Event(), [], []

    def stop_while_it_hangs():
        deadline = time.monotonic() + 120  # past it, stop anyway: the assertions below then say what never came
        while not ((out / "hang" / "seen.txt").is_file() and finished) and time.monotonic() < deadline:
            time.sleep(0.1)
        for worker in psutil.Process().children():  # the hanging notebook's worker (its job file is in out/)
            try:
                if str(out) in " ".join(worker.cmdline()):
                    seen.extend([worker, *worker.children(recursive=True)])  # and its kernel
            except psutil.Error:  # another test's process, ended meanwhile
                pass
        stop.set()

    stopper = threading.Thread(target=stop_while_it_hangs, daemon=True)
    stopper.start()
    with pytest.raises(RunStopped, match="1 of 2"):
        run_jobs(jobs, workers=2, environ=given, stop=stop, progress=finished.append, poll_s=0.1)
    stopper.join(5)
    assert "passed" in finished[0] and (out / "quick" / "seen.txt").read_text().split()[0] == "7"
    assert len(seen) >= 2 and not [p for p in seen if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not list(out.glob(".job-*")) and not (out / "hang" / "done.txt").exists()


def test_resume_skips_what_passed_unless_forced(collection, tmp_path):
    out = tmp_path / "out"
    first = run_collection("smoke", collection, out)
    stamp = (out / "good" / "v2.txt").stat().st_mtime_ns
    again = run_collection("smoke", collection, out, force=False)
    good, bad = again["results"]
    assert good["resumed"] and good["outputs"] == first["results"][0]["outputs"]
    assert (out / "good" / "v2.txt").stat().st_mtime_ns == stamp  # not run again
    assert bad["status"] == "failed" and not bad.get("resumed")  # failures always run again
    changed = run_collection("smoke", collection, out, force=False, overrides={"value": 5})
    assert not changed["results"][0].get("resumed") and changed["results"][0]["outputs"][-1] == "v5.txt"
    forced = run_collection("smoke", collection, out, force=True, only=["good"])
    assert not forced["results"][0].get("resumed")


def test_skip_several_profiles_and_unknown_names(collection, tmp_path):
    report = run_collection(["smoke", "other"], collection, tmp_path / "o", skip=["good"])
    got = [(r["profile"], r["notebook"], r["status"]) for r in report["results"]]
    assert got == [("smoke", "good", "skipped"), ("smoke", "bad", "failed"), ("other", "good", "skipped"),
                   ("other", "bad", "passed")]
    assert report["results"][0]["reason"] == "--skip"
    lacking = run_collection(["smoke", "other"], collection, tmp_path / "p", only=["good"])["results"][1]
    assert (lacking["status"], lacking["reason"]) == ("skipped", "no 'other' parameters in profiles.yaml")
    assert (tmp_path / "o" / "other" / "bad.ipynb").is_file() and report["results"][3]["executed"] == "other/bad.ipynb"
    suites = ET.parse(tmp_path / "o" / "junit.xml").getroot().findall("testsuite")
    assert [s.get("skipped") for s in suites] == ["1", "1"]
    with pytest.raises(ValueError, match="--only nope: no such notebook.*good"):
        run_collection("smoke", collection, tmp_path / "o", only=["nope"])
    with pytest.raises(ValueError, match="--skip nope: no such notebook"):
        run_collection("smoke", collection, tmp_path / "o", skip=["nope"])
    with pytest.raises(ValueError, match="--profile 'kaggle' is not defined.*other, smoke"):
        run_collection("kaggle", collection, tmp_path / "o")


def _report(started, **results):
    rows = []
    for name, (status, seconds, sig) in results.items():
        r = {"notebook": name, "profile": "smoke", "status": status, "duration_s": seconds}
        if sig:
            r["error"] = {"class": "other", "signature": sig, "ename": "E", "evalue": "boom"}
        rows.append(r)
    return {"schema": 2, "profile": "smoke", "started": started, "results": rows}


def test_compare_lists_new_failures_fixes_and_slowdowns():
    old = _report("t0", a=("passed", 10, None), b=("failed", 5, "s1"), c=("passed", 10, None),
                  d=("failed", 1, "s2"), e=("passed", 10, None))
    new = _report("t1", a=("failed", 3, "s3"), b=("passed", 6, None), c=("passed", 16, None),
                  d=("failed", 1, "s2"), e=("passed", 14, None), f=("timeout", 99, "s4"))
    diff = compare(old, new)
    assert [d["key"] for d in diff["new_failures"]] == ["smoke/a", "smoke/f"]
    assert [d["key"] for d in diff["fixed"]] == ["smoke/b"]
    assert [(d["key"], d["ratio"]) for d in diff["slower"]] == [("smoke/c", 1.6)]  # e: ×1.4 is not flagged
    assert diff["still_failing"] == [{"key": "smoke/d", "same": True, "error": "other `s2` E: boom"}]
    assert diff["added"] == ["smoke/f"] and diff["removed"] == []


def test_cli_run_report_and_compare(collection, tmp_path, capsys):
    assert cli.main(["run", "--profile", "smoke", "--notebooks", str(collection), "--only", "good",
                     "--out", str(tmp_path / "a")]) == 0
    assert cli.main(["run", "--profile", "smoke", "--notebooks", str(collection), "--out", str(tmp_path / "b"),
                     "--workers", "2", "--gpus", "none"]) == 1
    assert cli.main(["run", "--profile", "nope", "--notebooks", str(collection), "--out", str(tmp_path / "c")]) == 2
    assert "is not defined" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "b" / "report.json")]) == 0
    assert "| bad | smoke | failed |" in capsys.readouterr().out
    assert cli.main(["report", "--compare", str(tmp_path / "a" / "report.json"),
                     str(tmp_path / "b" / "report.json")]) == 1  # bad is new in b and fails: a new failure
    printed = capsys.readouterr().out
    assert "## Added (1)" in printed and "## New failures (1)\n- smoke/bad: failed" in printed
    assert cli.main(["report", "--compare", str(tmp_path / "b" / "report.json"),
                     str(tmp_path / "b" / "report.json")]) == 0


def test_cli_doctor_and_tiny(tmp_path, capsys):
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "CPU only" in out and "diffusers 0.42" in out
    assert cli.main(["tiny", "sdxl-vae-fp16-fix", "--out", str(tmp_path)]) == 0
    from genhelpers.twins.registry import folder_of

    assert (folder_of("sdxl-vae-fp16-fix", tmp_path) / "config.json").is_file()


def test_nightly_canary_runs_the_smoke_tier_with_tested_and_newest_versions():
    from .conftest import REPO

    flow = __import__("yaml").safe_load((REPO / ".github" / "workflows" / "canary.yml").read_text())
    triggers = flow.get("on") or flow.get(True)  # YAML 1.1 reads a bare `on` as true
    assert triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"]  # every night
    smoke = flow["jobs"]["smoke"]
    legs = smoke["strategy"]["matrix"]["include"]
    assert {leg["stack"] for leg in legs} == {"tested", "newest"} and not smoke["strategy"]["fail-fast"]
    runs = "\n".join(step.get("run", "") for step in smoke["steps"])
    assert "-c genhelpers/tested-versions.txt" in runs and "pip install -q -U diffusers transformers" in runs
    assert "download.pytorch.org/whl/cpu" in runs  # never the multi-GB CUDA build
    assert "genhelpers run --profile smoke --workers 2" in runs
    upload = next(s for s in smoke["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and "report.*" in upload["with"]["path"]
    assert "report --compare" in "\n".join(s.get("run", "") for s in flow["jobs"]["compare"]["steps"])


def test_longest_notebook_starts_first(collection, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text(json.dumps({"profile": "smoke", "results": [
        {"notebook": "good", "status": "passed", "duration_s": 1.0},
        {"notebook": "bad", "status": "passed", "duration_s": 50.0}]}))
    lines = []
    report = run_collection("smoke", collection, out, progress=lines.append)
    finished = [line.split()[2] for line in lines if line.startswith("[")]
    assert finished == ["smoke/bad", "smoke/good"]  # the slow one went first
    assert [r["notebook"] for r in report["results"]] == ["good", "bad"]  # the report keeps the collection's order


def flaky_kernel(tmp_path, monkeypatch, deaths: int) -> str:
    """A kernelspec whose first ``deaths`` launches exit before answering (as a kernel that lost its ports to a
    parallel launch does), then a normal IPython kernel."""
    import sys

    count = tmp_path / "launches"
    boot = (f"import pathlib, sys; c = pathlib.Path({str(count)!r}); n = len(c.read_text()) if c.exists() else 0; "
            f"c.write_text('x' * (n + 1)); sys.exit(3) if n < {deaths} else None; "
            "from ipykernel import kernelapp; kernelapp.launch_new_instance()")
    spec = tmp_path / "jupyter" / "kernels" / "flaky"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [sys.executable, "-c", boot, "-f", "{connection_file}"],
                                                  "display_name": "flaky", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "flaky"


def test_a_kernel_that_dies_while_starting_is_started_again(tmp_path, monkeypatch):
    from genhelpers.runs.report import markdown
    from genhelpers.runs.runner import run_notebook

    notebook(tmp_path / "good.ipynb", GOOD)
    kernel = flaky_kernel(tmp_path, monkeypatch, 2)
    r = run_notebook(tmp_path / "good.ipynb", {"value": 5}, tmp_path / "out", kernel=kernel)
    assert r["status"] == "passed" and r["kernel_start_retries"] == 2 and "v5.txt" in r["outputs"]
    assert len((tmp_path / "launches").read_text()) == 3
    page = markdown({"profile": "smoke", "results": [r], "duration_s": 1, "started": "now", "summary": {"passed": 1}})
    assert "| passed (kernel restarted 2× at start) |" in page


def test_a_kernel_that_never_starts_is_reported_after_the_last_attempt(tmp_path, monkeypatch):
    from genhelpers.runs.runner import KERNEL_START_ATTEMPTS, run_notebook

    notebook(tmp_path / "good.ipynb", GOOD)
    r = run_notebook(tmp_path / "good.ipynb", {}, tmp_path / "out", kernel=flaky_kernel(tmp_path, monkeypatch, 99))
    assert r["status"] == "failed" and r["error"]["class"] == "kernel_died"
    assert "before replying to kernel_info" in r["error"]["evalue"]
    assert len((tmp_path / "launches").read_text()) == KERNEL_START_ATTEMPTS and "outputs" not in r
