"""Trust boundaries (issue 33, after the security review in ../shared/reviews/security-2026-12.md): a notebook
installs, unpickles, reads and writes only what its user chose. Each test reproduces a finding of the review and
failed before its fix. (The dVAE's pickles: tests/test_dvae.py; hub revisions and allow_pickle: tests/test_hub.py;
the install cell and wheelhouse for real in a Kaggle-image environment: tests/test_rehearsal.py.)"""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
import yaml

from genhelpers.platform import folders, stack
from genhelpers.runs import kaggle, report, runner

from .conftest import NOTEBOOKS, REPO

CELL = (NOTEBOOKS / "install_cell.py").read_text()


# ------------------------------------------------------------------------------ installs (findings 1, 2)
def dataset(root: Path, where: str, wheel: str = "genhelpers-0.1.0-py3-none-any.whl", record: bool = True,
            wheelhouse: bool = False) -> Path:
    """A dataset folder as `genhelpers kaggle build` writes it (a wheel, maybe a wheelhouse, hashes.json)."""
    top = root / where
    top.mkdir(parents=True)
    (top / wheel).write_bytes(f"wheel of {where}".encode())
    if wheelhouse:
        (top / "wheelhouse").mkdir()
        (top / "wheelhouse" / "diffusers-0.42.1-py3-none-any.whl").write_bytes(b"diffusers")
    if record:
        folders.record_hashes(top)
    return top


def run_cell(root: Path, tmp_path: Path, **env) -> dict:
    """The install cell's own source, run as on Kaggle (no checkout, genhelpers not installed: ``python -S``),
    with pip replaced by a recorder. Returns the pip commands, what it printed and the error it raised."""
    runner_py = tmp_path / "run_cell.py"
    runner_py.write_text(
        "import json, subprocess, sys\ncalls = []\n"
        "subprocess.run = lambda cmd, **k: calls.append(cmd)\n"
        "error = None\n"
        "try:\n    exec(compile(open(sys.argv[1]).read(), 'install_cell', 'exec'), {})\n"
        "except Exception as e:\n    error = f'{type(e).__name__}: {e}'\n"
        "print(json.dumps({'calls': calls, 'error': error}))\n")
    (tmp_path / "cell.py").write_text(CELL)
    vars_ = {k: v for k, v in os.environ.items() if not k.startswith("GENHELPERS_")}
    vars_.update(GENHELPERS_KAGGLE_INPUT=str(root), **env)
    done = subprocess.run([sys.executable, "-S", str(runner_py), str(tmp_path / "cell.py")], cwd=tmp_path,
                          env=vars_, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    out = json.loads(lines[-1])
    out["said"] = "\n".join(lines[:-1])
    return out


def installed(result) -> list[str]:
    return [c[-1] for c in result["calls"] if c[1:4] == ["-m", "pip", "install"]]


def test_the_install_cell_takes_only_the_named_dataset_never_another_datasets_wheel(tmp_path):
    """The review's case: a third-party dataset carrying a genhelpers wheel whose path sorts last. Before: that
    wheel was installed, silently. Now: the genhelpers dataset's own wheel, checked, and one line says which."""
    root = tmp_path / "input"
    ours = dataset(root, "datasets/alice/genhelpers-wheel")
    dataset(root, "datasets/mallory/sdxl-weights-fp16", wheel="genhelpers-0.0.1-py3-none-any.whl")
    got = run_cell(root, tmp_path)
    assert installed(got) == [str(ours / "genhelpers-0.1.0-py3-none-any.whl")]
    assert f"genhelpers installed from {ours}" in got["said"] and "as its dataset recorded" in got["said"]


@pytest.mark.parametrize("layout", ["genhelpers-wheel", "datasets/alice/genhelpers-wheel"])
def test_both_mount_layouts(tmp_path, layout):
    root = tmp_path / "input"
    ours = dataset(root, layout)
    assert installed(run_cell(root, tmp_path)) == [str(ours / "genhelpers-0.1.0-py3-none-any.whl")]
    assert folders.named_dataset(root) == ours


def test_two_datasets_of_the_same_name_are_refused_until_one_is_named(tmp_path, monkeypatch):
    root = tmp_path / "input"
    dataset(root, "datasets/alice/genhelpers-wheel")
    bob = dataset(root, "datasets/bob/genhelpers-wheel")
    got = run_cell(root, tmp_path)
    assert got["calls"] == [] and "2 attached datasets are called 'genhelpers-wheel'" in got["error"]
    assert "GENHELPERS_DATASET" in got["error"]
    with pytest.raises(folders.UntrustedInput, match="2 attached datasets"):
        folders.named_dataset(root)
    got = run_cell(root, tmp_path, GENHELPERS_DATASET="bob/genhelpers-wheel")
    assert installed(got) == [str(bob / "genhelpers-0.1.0-py3-none-any.whl")]
    monkeypatch.setenv("GENHELPERS_DATASET", "bob/genhelpers-wheel")
    assert folders.named_dataset(root) == bob


@pytest.mark.parametrize("case, message", [
    ("tampered", "does not match the SHA-256 recorded"),
    ("unrecorded", "does not match the SHA-256 recorded"),
])
def test_an_unverified_wheel_is_never_installed(tmp_path, case, message):
    root = tmp_path / "input"
    top = dataset(root, "datasets/alice/genhelpers-wheel", record=case != "unrecorded")
    if case == "tampered":
        (top / "genhelpers-0.1.0-py3-none-any.whl").write_bytes(b"something else")
    got = run_cell(root, tmp_path)
    assert got["calls"] == [] and message in got["error"]


def test_a_source_that_pip_would_read_as_an_option_is_refused(tmp_path):
    got = run_cell(tmp_path / "none", tmp_path, GENHELPERS_SOURCE="--index-url=https://evil.example/simple")
    assert got["calls"] == [] and "is read by pip as an option" in got["error"]


def test_without_any_source_the_cell_says_where_to_get_genhelpers(tmp_path):
    got = run_cell(tmp_path / "none", tmp_path)
    assert got["calls"] == [] and "Add Input" in got["error"] and "GENHELPERS_DATASET" in got["error"]


def ok(calls):
    return lambda cmd, **k: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", "")


OLD_IMAGE = {"diffusers": "0.42.0", "transformers": "5.24.0", "huggingface-hub": "2.4.0", "accelerate": "1.15.0",
             "trimesh": "4.0", "imageio": "2.37", "imageio-ffmpeg": "0.6", "torch": "2.11.0"}


def test_another_datasets_wheelhouse_is_never_used_and_the_pins_are_our_own(tmp_path, monkeypatch):
    """The review's case (finding 2): a third-party dataset's wheelhouse with its own tested-versions.txt
    (diffusers==0.99.0). Before: it won and set the pins. Now: only the genhelpers dataset's wheelhouse, and the
    pins are the installed genhelpers' own."""
    root = tmp_path / "input"
    evil = root / "datasets/mallory/sdxl-weights-fp16/wheelhouse"
    evil.mkdir(parents=True)
    (evil / "tested-versions.txt").write_text("diffusers==0.99.0\n")
    (evil / "diffusers-0.99.0-py3-none-any.whl").write_bytes(b"x")
    ours = dataset(root, "datasets/alice/genhelpers-wheel", wheelhouse=True)
    monkeypatch.setenv("GENHELPERS_KAGGLE_INPUT", str(root))
    assert stack.find_wheelhouse() == ours / "wheelhouse"
    calls = []
    specs = stack.ensure(run=ok(calls), installed=OLD_IMAGE.get, check=lambda: None)
    assert "diffusers==0.42.1" in specs and not any("0.99" in s for s in specs)
    assert calls[0][calls[0].index("--find-links") + 1] == str(ours / "wheelhouse")


def test_a_wheelhouse_wheel_that_changed_stops_the_install_before_pip(tmp_path, monkeypatch):
    root = tmp_path / "input"
    ours = dataset(root, "datasets/alice/genhelpers-wheel", wheelhouse=True)
    (ours / "wheelhouse" / "diffusers-0.42.1-py3-none-any.whl").write_bytes(b"swapped")
    monkeypatch.setenv("GENHELPERS_KAGGLE_INPUT", str(root))
    calls = []
    with pytest.raises(folders.UntrustedInput, match="not the recorded one"):
        stack.ensure(run=ok(calls), installed=OLD_IMAGE.get, check=lambda: None)
    assert calls == []


# ------------------------------------------------------------------------------ reports (findings 4, 5, 6)
EVIL = '<script>alert(1)</script> `tick` a|b [x](javascript:y) \x1b[31mred\x1b[0m ctrl:\x01\x08\x0b end'


def evil_report(root: Path) -> dict:
    (root / "nb").mkdir(parents=True)
    error = runner.faults.describe("ValueError", EVIL, traceback=f"Traceback\n{EVIL}")
    return {"schema": 2, "profile": "smoke", "profiles": ["smoke"], "started": "2026-12-06T00:00:00",
            "duration_s": 1.0, "workers": 1, "gpus": [], "versions": {}, "summary": {"passed": 1, "failed": 1},
            "results": [{"notebook": "nb", "profile": "smoke", "status": "failed", "duration_s": 1.0,
                         "error": error, "executed": "nb.ipynb"},
                        {"notebook": "nb2", "profile": "smoke", "status": "passed", "duration_s": 1.0,
                         "executed": "nb2.ipynb", "outputs": ['"><img src=x onerror=alert(1)>_grid.png',
                                                             "a|b`c<svg onload=alert(2)> &amp;.png"]}]}


def test_junit_is_well_formed_whatever_an_error_contains(tmp_path):
    r = evil_report(tmp_path)
    report.write_report(r, tmp_path)
    tree = ET.parse(tmp_path / "junit.xml")  # before the fix: ParseError, not well-formed (invalid token)
    failure = tree.find(".//failure")
    assert "<script>" in failure.get("message") and "\x01" not in failure.get("message")
    assert "\x1b" not in failure.text and "red" in failure.text


def test_markdown_report_and_compare_escape_what_notebooks_wrote(tmp_path):
    r = evil_report(tmp_path)
    text = report.markdown(r)
    for raw in ("<script>", "<img", "<svg", "`tick`", "a|b", "[x](javascript"):
        assert raw not in text, raw
    rows = [line for line in text.splitlines() if line.startswith("| nb")]
    assert all(line.count("|") == 9 for line in rows), rows  # no cell breaks out of its column
    old = {**r, "results": [{**x, "status": "passed"} for x in r["results"]]}
    diff = report.compare(old, r)
    md = report.compare_markdown(diff, old, r)
    assert "<script>" not in md and "`tick`" not in md and "&lt;script&gt;" in md


def test_a_decompression_bomb_among_the_outputs_gets_a_note_not_a_crash(tmp_path):
    """A 14000×14000 1-bit PNG of ~24 KB: PIL refuses to decode it (DecompressionBombError). Before the fix it
    stopped report.html and junit.xml from being written at all."""
    from PIL import Image

    folder = tmp_path / "nb1"
    folder.mkdir()
    Image.new("1", (14000, 14000)).save(folder / "x_grid.png")
    assert (folder / "x_grid.png").stat().st_size < 100_000
    r = {"schema": 2, "profile": "smoke", "profiles": ["smoke"], "started": "now", "duration_s": 1.0,
         "versions": {}, "summary": {"passed": 1}, "results": [{"notebook": "nb1", "status": "passed",
                                                                 "outputs": ["x_grid.png"], "executed": "nb1.ipynb"}]}
    paths = report.write_report(r, tmp_path)
    assert set(paths) == {"json", "md", "html", "junit"}
    assert "x_grid.png: no preview" in (tmp_path / "report.html").read_text()


def test_one_report_form_failing_does_not_take_the_others_down(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report, "render_html", lambda *a: 1 / 0)
    paths = report.write_report(evil_report(tmp_path), tmp_path)
    assert set(paths) == {"json", "md", "junit"} and not (tmp_path / "report.html").exists()
    assert "ZeroDivisionError" in (tmp_path / "report-errors.txt").read_text()
    assert "could not write report.html" in capsys.readouterr().err


# ------------------------------------------------------------------------------ paths (findings 8, 9, 14)
@pytest.mark.parametrize("handle", ["kaggle:../../hub/gated", "kaggle:alice/../x/y", "kaggle:./a/b/c",
                                    "kaggle:alice/.hidden/pyTorch/base"])
def test_kaggle_handles_stay_inside_the_mount(handle):
    from genhelpers.hub import weights

    with pytest.raises(ValueError, match="is not a Kaggle Models handle"):
        weights.kaggle_handle(handle)
    with pytest.raises(ValueError):
        kaggle.model_sources({"model": handle})


def test_collect_treats_manifest_names_as_names(tmp_path):
    """The review's case (finding 9): a build folder whose manifest names a notebook '../victim'. Before: collect
    deleted and replaced a folder outside --out. Now: refused before anything is touched."""
    build = tmp_path / "build"
    build.mkdir()
    (build / kaggle.MANIFEST).write_text(json.dumps({
        "user": "alice", "profile": "kaggle-t4", "machine": "T4x2", "dataset": "alice/genhelpers-wheel",
        "dataset_folder": "genhelpers-wheel", "built": "now",
        "kernels": [{"notebook": "../victim", "id": "alice/x", "folder": "x", "parameters": {}}]}))
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "data.txt").write_text("keep me")
    with pytest.raises(ValueError, match="never a path"):
        kaggle.collect(build, tmp_path / "out", run=lambda *a, **k: pytest.fail("the client was called"))
    assert (victim / "data.txt").read_text() == "keep me"


def test_a_run_never_deletes_through_a_link(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "nb").symlink_to(elsewhere)
    with pytest.raises(RuntimeError, match="is a link or lies outside"):
        runner.clear(out / "nb", out)
    assert (elsewhere / "keep.txt").is_file()


@pytest.mark.parametrize("profiles, message", [
    ({"../escape": {"smoke": {}}}, "never a path"),
    ({"sdxl": {"smoke": {"x=__import__('os').system('id');y": 1}}}, "not Python names"),
])
def test_profiles_cannot_name_paths_or_inject_code(tmp_path, profiles, message):
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(profiles))
    with pytest.raises(ValueError, match=message):
        runner.plan_jobs(profiles, ["smoke"], NOTEBOOKS, tmp_path)


# ------------------------------------------------------------------------------ kernels (finding 15)
def test_kernels_get_no_kaggle_keys(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import os\nprint(sorted(k for k in os.environ if k.startswith('KAGGLE')))")]
    nbformat.write(nb, tmp_path / "env.ipynb")
    for var in ("KAGGLE_KEY", "KAGGLE_USERNAME", "KAGGLE_API_TOKEN"):
        monkeypatch.setenv(var, "secret-value")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")  # not a key: the notebook needs it to know where it runs
    result = runner.run_notebook(tmp_path / "env.ipynb", {}, tmp_path / "out")
    assert result["status"] == "passed", result.get("error")
    printed = nbformat.read(tmp_path / "out" / "env.ipynb", as_version=4).cells[-1].outputs[0]["text"]
    assert printed.strip() == "['KAGGLE_KERNEL_RUN_TYPE']"
    assert os.environ["KAGGLE_KEY"] == "secret-value"  # given back to this process afterwards


# ------------------------------------------------------------------------------ files (findings 10, 11)
def test_the_wheel_carries_committed_files_only(tmp_path, monkeypatch):
    """The review's case (finding 10): an untracked module and a stale build/ folder. Before: both ended up in
    the wheel uploaded to Kaggle. Now the wheel is built from `git archive HEAD`."""
    import zipfile

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    (clone / "genhelpers" / "scratch_notes.py").write_text('TOKEN = "hf_FAKE_STALE_777"\n')
    (clone / "build" / "lib" / "genhelpers").mkdir(parents=True)
    (clone / "build" / "lib" / "genhelpers" / "stale.py").write_text("x = 1\n")
    monkeypatch.setattr(kaggle, "REPO", clone)
    wheel = kaggle.build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    assert "genhelpers/__init__.py" in names
    assert not any(n.endswith(("scratch_notes.py", "stale.py")) for n in names)


def test_publishing_a_file_never_touches_the_process_umask(tmp_path, monkeypatch):
    from genhelpers.outputs import media

    def no(*a):
        raise AssertionError("the process umask was changed")

    monkeypatch.setattr(os, "umask", no)
    path = media.write_json(tmp_path / "x.json", {"a": 1})
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no umask in /proc/self/status")


# ------------------------------------------------------------------------------ CI (finding 16)
def test_the_canary_reads_only_and_pins_every_action_by_commit():
    flow = yaml.safe_load((REPO / ".github" / "workflows" / "canary.yml").read_text())
    assert flow["permissions"] == {"contents": "read"}
    uses = [step["uses"] for job in flow["jobs"].values() for step in job["steps"] if "uses" in step]
    assert uses and all(len(u.split("@")[1]) == 40 and int(u.split("@")[1], 16) >= 0 for u in uses), uses
    legs = flow["jobs"]["smoke"]["strategy"]["matrix"]["include"]
    assert {"stack": "tested", "python": "3.12"} in legs  # Kaggle's image runs CPython 3.12


# ------------------------------------------------------------------------------ what used to fail silently (13)
def test_a_failing_secrets_service_is_not_read_as_no_token(monkeypatch, capsys):
    import types

    from genhelpers.hub import weights

    class Client:
        def get_secret(self, name):
            raise RuntimeError("the secrets backend is down")

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setitem(sys.modules, "kaggle_secrets", types.SimpleNamespace(UserSecretsClient=Client))
    monkeypatch.setitem(sys.modules, "google.colab", None)
    assert weights.hub_token() is None
    said = capsys.readouterr().out
    assert "HF_TOKEN could not be read from Kaggle Secrets (RuntimeError)" in said and "backend" not in said


def test_a_failing_kaggle_mirror_says_it_falls_back_to_the_hub(monkeypatch, tmp_path, capsys):
    import dataclasses

    from genhelpers.hub import catalog, weights

    entry = dataclasses.replace(catalog.ENTRIES["sdxl-vae-fp16-fix"], kaggle_handle="alice/vae/pyTorch/fix/1")
    monkeypatch.setattr(catalog, "find", lambda ref: entry)
    monkeypatch.setattr(weights, "from_kaggle_input", lambda repo, marker=None: None)

    def broken(handle):
        raise ConnectionError("kaggle.com refused")

    monkeypatch.setattr(weights, "from_kagglehub", broken)
    monkeypatch.setattr(weights, "from_hub", lambda *a, **k: (tmp_path, "c" * 40))
    monkeypatch.setattr(weights, "check_weights", lambda *a, **k: None)
    got = weights.resolve("sdxl-vae-fp16-fix")
    assert got.source == "hf-hub" and got.revision == "c" * 40
    assert "the Kaggle Models mirror alice/vae/pyTorch/fix/1 failed (ConnectionError" in capsys.readouterr().out
