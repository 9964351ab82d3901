"""`genhelpers kaggle`: push folders a Kaggle user can push as they are, and the exact commands given to the
official client. The client cannot reach Kaggle here: a stand-in `kaggle` on PATH records what it was asked and
answers like the real one."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from genhelpers import cli
from genhelpers.platform import stack
from genhelpers.runs import kaggle

from .conftest import NOTEBOOKS


def pip_without_network(calls):
    """Build the genhelpers wheel for real; stand in for pip's resolver and `pip download` (tests stay off the
    index): each requirement resolves to its pinned version (or 9.9 for a range) with no further requirements."""
    def run(cmd, **kw):
        calls.append(cmd)
        if cmd[3] == "install" and "--dry-run" in cmd:
            specs = [c for c in cmd if "==" in c or ">=" in c]
            items = [{"metadata": {"name": s.split("=")[0].split(">")[0], "version": s.split("==")[1] if "==" in s
                                   else "9.9", "requires_dist": []}} for s in specs]
            Path(cmd[cmd.index("--report") + 1]).write_text(json.dumps({"install": items}))
            return subprocess.CompletedProcess(cmd, 0, "", "")
        if cmd[3] == "download":
            folder = cmd[cmd.index("-d") + 1]
            for spec in (c for c in cmd if "==" in c):
                name, version = spec.split("==")
                wheel = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
                (Path(folder) / wheel).write_text("")
            return subprocess.CompletedProcess(cmd, 0, "", "")
        return subprocess.run(cmd, **kw)
    return run


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("kaggle") / "build"
    calls = []
    manifest = kaggle.build("kaggle-t4", out, "alice", NOTEBOOKS, only=["sdxl", "svd", "shap_e"],
                            run=pip_without_network(calls))
    return out, manifest, calls


def test_push_folder_per_notebook_with_metadata(built):
    out, manifest, _ = built
    assert [k["folder"] for k in manifest["kernels"]] == ["genai-sdxl", "genai-shap-e", "genai-svd"]
    meta = json.loads((out / "genai-shap-e" / "kernel-metadata.json").read_text())
    assert meta == {"id": "alice/genai-shap-e", "title": "GenAI shap e", "code_file": "shap_e.ipynb",
                    "language": "python", "kernel_type": "notebook", "is_private": True, "enable_gpu": True,
                    "enable_tpu": False, "enable_internet": True, "machine_shape": "NvidiaTeslaT4",
                    "dataset_sources": ["alice/genhelpers-wheel"], "model_sources": [], "competition_sources": [],
                    "kernel_sources": []}
    assert sorted(p.name for p in (out / "genai-sdxl").iterdir()) == ["kernel-metadata.json", "sdxl.ipynb"]
    assert not list(out.parent.glob(".build-*"))  # written aside, moved into place


def test_pushed_notebook_carries_the_profile(built):
    out, _, _ = built
    nb = nbformat.read(out / "genai-sdxl" / "sdxl.ipynb", as_version=4)
    nbformat.validate(nb)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'model = "stabilityai/stable-diffusion-xl-base-1.0"' in injected[0].source
    assert 'output_dir = "/kaggle/working/outputs/sdxl"' in injected[0].source
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # prepared, not run
    original = nbformat.read(NOTEBOOKS / "sdxl.ipynb", as_version=4)
    assert len(nb.cells) == len(original.cells) + 1
    # the install cell installs from the dataset pushed with it, by owner: never another attached dataset
    assert 'os.environ.get("GENHELPERS_DATASET", "alice/genhelpers-wheel")' in nb.cells[1].source


def test_dataset_has_the_wheel_and_the_tested_versions(built):
    out, manifest, calls = built
    ds = out / "genhelpers-wheel"
    assert json.loads((ds / "dataset-metadata.json").read_text())["id"] == "alice/genhelpers-wheel"
    (wheel,) = ds.glob("genhelpers-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "genhelpers/tested-versions.txt" in names and "genhelpers/hub/configs/mvdream/unet.json" in names
    assert "genhelpers/kaggle-image-packages.txt" in names and "genhelpers/hub/configs/sd21/unet.json" in names
    pins = stack.tested()
    download = next(c for c in calls if c[3] == "download")
    assert download[3:6] == ["download", "-q", "--no-deps"]
    # Kaggle's platform (CPython 3.12, manylinux x86_64), wheels only: never this machine's
    assert download[download.index("--python-version") + 1] == "3.12" and "manylinux2014_x86_64" in download
    assert download[download.index("-d") + 1].endswith("/genhelpers-wheel/wheelhouse")  # built aside, then moved
    # the tested set, plus trimesh, which the image lacks; imageio and imageio-ffmpeg are the image's own
    got = sorted(c for c in download if "==" in c)
    notebook = [f"{n}=={v}" for n, v in stack.NOTEBOOK_PACKAGES.items()]  # gpt4motion's mujoco, installed on use
    assert got == sorted([f"{n}=={v}" for n, v in pins.items()] + ["trimesh==9.9"] + notebook)
    assert not any(c.startswith(("torch", "nvidia")) for c in download)
    assert stack.tested(ds / "wheelhouse" / "tested-versions.txt") == pins
    assert stack.find_wheelhouse(out) == ds / "wheelhouse"  # what a notebook's install cell looks for
    # every file is recorded with its SHA-256, the commit it was built from with it; the checks pass on it
    from genhelpers.platform.folders import verified

    record = json.loads((ds / "hashes.json").read_text())
    assert wheel.name in record["files"] and len(record["commit"]) == 40
    assert record["dataset"] == "alice/genhelpers-wheel"
    assert set(verified(ds, [wheel, *(ds / "wheelhouse").glob("*.whl")])) == {
        p.relative_to(ds).as_posix() for p in [wheel, *(ds / "wheelhouse").glob("*.whl")]}


def test_build_refuses_bad_input(built, tmp_path):
    out, _, _ = built
    with pytest.raises(FileExistsError, match="not empty"):
        kaggle.build("kaggle-t4", out, "alice", NOTEBOOKS, wheelhouse=False)
    with pytest.raises(ValueError, match="user='': give your Kaggle user name"):
        kaggle.build("kaggle-t4", tmp_path / "x", "", NOTEBOOKS)
    with pytest.raises(ValueError, match="machine='A100'"):
        kaggle.kernel_metadata("sdxl", "alice", {}, machine="A100")
    assert kaggle.model_sources({"model": "kaggle:bob/sdxl/pytorch/base/1", "seed": 1}) == ["bob/sdxl/pytorch/base/1"]
    with pytest.raises(ValueError, match=r"model='kaggle:bob/sdxl/pytorch/base' has no version.*/<version>"):
        kaggle.model_sources({"model": "kaggle:bob/sdxl/pytorch/base"})
    with pytest.raises(ValueError, match="machine='P100'.*retired"):
        kaggle.kernel_metadata("sdxl", "alice", {}, machine="P100")
    assert not (out / "kaggle.json").exists() and (out / kaggle.MANIFEST).is_file()  # kaggle.json: credentials


FAKE = """\
#!{python}
# Behaves like kaggle 2.2.5: errors printed with exit status 0, status NEW_SCRIPT, a failure message line,
# a dataset that is "pending" for a while after it is created.
import json, os, pathlib, sys
args = sys.argv[1:]
log = pathlib.Path(os.environ["FAKE_KAGGLE_LOG"])
with open(log, "a") as f:
    f.write(json.dumps(args) + "\\n")
states = json.loads(os.environ.get("FAKE_KAGGLE_STATES", "{{}}"))
if args[:2] == ["kernels", "status"]:
    state = states.get(args[2], "complete")
    print(f'{{args[2]}} has status "KernelWorkerStatus.{{state.upper()}}"')
    if state == "error":
        print('Failure message: "Your notebook tried to allocate more memory than is available."')
elif args[:2] == ["datasets", "status"]:
    asked = sum(1 for line in log.read_text().splitlines() if '"status"' in line and '"datasets"' in line)
    print("ready" if asked > int(os.environ.get("FAKE_KAGGLE_PENDING", "0")) else "pending")
elif args[:2] == ["kernels", "output"]:
    dest = pathlib.Path(args[args.index("-p") + 1])
    slug = args[2].split("/")[1]
    name = {{"genai-sdxl": "sdxl", "genai-svd": "svd", "genai-shap-e": "shap_e"}}[slug]
    files = dest / "outputs" / name
    files.mkdir(parents=True)
    (files / "out_000.json").write_text(json.dumps({{"memory": {{"gpu_peak_mib": [9100, 8300]}}}}))
    log = [{{"stream_name": "stdout", "time": 1.0, "data": "loading\\n"}}]
    if states.get(args[2]) == "error":
        log.append({{"stream_name": "stderr", "time": 2.0,
                    "data": "Traceback (most recent call last):\\ntorch.OutOfMemoryError: CUDA out of memory. "
                            "Tried to allocate 2.00 GiB\\n"}})
    else:
        (files / "out_000.png").write_bytes(b"png")
    (dest / f"{{slug}}.log").write_text(json.dumps(log))
    print(f"Output file downloaded to {{dest}}")
elif args[:2] == ["kernels", "push"]:
    if os.environ.get("FAKE_KAGGLE_PUSH_ERROR"):
        print("Kernel push error: " + os.environ["FAKE_KAGGLE_PUSH_ERROR"])
    elif os.environ.get("FAKE_KAGGLE_BAD_SOURCES"):
        print("The following are not valid dataset sources and could not be added to the kernel: ['alice/x']")
        print("Kernel version 1 successfully pushed.  Please check progress at https://www.kaggle.com/code/a/b")
    else:
        print("Kernel version 1 successfully pushed.  Please check progress at https://www.kaggle.com/code/a/b")
else:
    print("ok")
"""


@pytest.fixture
def fake_client(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "kaggle"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_KAGGLE_LOG", str(tmp_path / "calls.jsonl"))
    return lambda: [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def no_sleep(seconds):
    pass


def test_push_and_status_use_the_official_client(built, fake_client, monkeypatch, capsys):
    out, _, _ = built
    monkeypatch.setenv("FAKE_KAGGLE_PENDING", "2")  # the new dataset is processed for a while
    wait = lambda d, run: kaggle.wait_for_dataset(d, run, sleep=no_sleep)  # noqa: E731
    assert kaggle.push(out, new_dataset=True, wait=wait) == ["alice/genai-sdxl", "alice/genai-shap-e",
                                                             "alice/genai-svd"]
    monkeypatch.setenv("FAKE_KAGGLE_STATES", json.dumps({"alice/genai-svd": "new_script",
                                                         "alice/genai-shap-e": "error"}))
    assert kaggle.status(out) == {"sdxl": "complete", "svd": "new_script", "shap_e": "error: Your notebook tried to "
                                  "allocate more memory than is available."}
    t4 = ["--accelerator", "NvidiaTeslaT4"]
    assert fake_client() == [
        ["datasets", "create", "-p", str(out / "genhelpers-wheel"), "--dir-mode", "zip"],
        ["datasets", "status", "alice/genhelpers-wheel"],
        ["datasets", "status", "alice/genhelpers-wheel"],
        ["datasets", "status", "alice/genhelpers-wheel"],  # pushed only once the dataset is ready
        ["kernels", "push", "-p", str(out / "genai-sdxl"), *t4],
        ["kernels", "push", "-p", str(out / "genai-shap-e"), *t4],
        ["kernels", "push", "-p", str(out / "genai-svd"), *t4],
        ["kernels", "status", "alice/genai-sdxl"],
        ["kernels", "status", "alice/genai-shap-e"],
        ["kernels", "status", "alice/genai-svd"],
    ]
    monkeypatch.setenv("FAKE_KAGGLE_PENDING", "0")
    assert cli.main(["kaggle", "push", str(out)]) == 0  # later pushes: a new dataset version
    assert fake_client()[-5] == ["datasets", "version", "-p", str(out / "genhelpers-wheel"), "-m", "genhelpers",
                                 "--dir-mode", "zip"]
    assert "pushed alice/genai-svd" in capsys.readouterr().out


@pytest.mark.parametrize("env, said", [
    ({"FAKE_KAGGLE_PUSH_ERROR": "Notebook not found"}, "Kernel push error: Notebook not found"),
    ({"FAKE_KAGGLE_BAD_SOURCES": "1"}, "not valid dataset sources"),
])
def test_errors_printed_with_exit_status_0_are_errors(built, fake_client, monkeypatch, env, said):
    out, _, _ = built
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(RuntimeError, match=f"kaggle kernels push .*reported an error.*{said}"):
        kaggle.push(out, wait=lambda d, run: "ready")


def test_a_dataset_that_never_gets_ready_stops_the_push(fake_client, monkeypatch):
    monkeypatch.setenv("FAKE_KAGGLE_PENDING", "1000")
    with pytest.raises(TimeoutError, match="still 'pending'.*without --new-dataset"):
        kaggle.wait_for_dataset("alice/genhelpers-wheel", timeout=30, every=10, sleep=no_sleep)


def test_collect_folds_kaggle_runs_into_the_report(built, fake_client, monkeypatch, tmp_path):
    out, _, _ = built
    monkeypatch.setenv("FAKE_KAGGLE_STATES", json.dumps({"alice/genai-svd": "error", "alice/genai-shap-e": "queued"}))
    report = kaggle.collect(out, tmp_path / "collected")
    got = {r["notebook"]: r for r in report["results"]}
    assert got["sdxl"]["status"] == "passed" and got["sdxl"]["outputs"] == ["out_000.json", "out_000.png"]
    assert got["sdxl"]["gpu_peak_mib"] == [9100, 8300]
    assert got["svd"]["status"] == "failed" and got["svd"]["error"]["class"] == "out_of_memory"
    assert got["svd"]["error"]["ename"] == "OutOfMemoryError" and "Tried to allocate" in got["svd"]["error"]["evalue"]
    assert got["svd"]["partial_files"] == ["out_000.json"] and "outputs" not in got["svd"]
    assert got["svd"]["kaggle_message"] == "Your notebook tried to allocate more memory than is available."
    assert got["shap_e"]["status"] == "skipped" and "queued" in got["shap_e"]["reason"]
    download = str(tmp_path / "collected" / ".sdxl-download")
    assert ["kernels", "output", "alice/genai-sdxl", "-p", download] in fake_client()
    assert (tmp_path / "collected" / "report.html").is_file() and (tmp_path / "collected" / "junit.xml").is_file()
    assert not list((tmp_path / "collected").glob(".*-download"))


def test_without_the_client_nothing_pretends_to_succeed(built, tmp_path, monkeypatch, capsys):
    out, _, _ = built
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match="official Kaggle client is not installed"):
        kaggle.push(out)
    assert cli.main(["kaggle", "status", str(out)]) == 2
    assert "not installed" in capsys.readouterr().err


def test_a_failing_client_command_is_reported(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kaggle").write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        sys.stderr.write("401 - Unauthorized: check ~/.kaggle/kaggle.json\\n")
        sys.exit(1)
        """))
    (bin_dir / "kaggle").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(RuntimeError, match="kaggle kernels status a/b failed: 401 - Unauthorized"):
        kaggle.client(["kernels", "status", "a/b"])
