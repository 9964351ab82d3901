"""The runner and the report, on two small notebooks: one that writes a file, one that raises."""
import json

import nbformat
import pytest

from genhelpers import cli
from genhelpers.runs import run_collection


def notebook(path, body):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("output_dir = 'out'\nvalue = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def collection(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    notebook(nbs / "good.ipynb", "import pathlib\np = pathlib.Path(output_dir); p.mkdir(parents=True, exist_ok=True)\n"
                                 "(p / f'v{value}.txt').write_text('hi')")
    notebook(nbs / "bad.ipynb", "import pathlib\np = pathlib.Path(output_dir); p.mkdir(parents=True, exist_ok=True)\n"
                                "(p / 'half.txt').write_text('x')\nraise ValueError(f'value={value} is wrong')")
    (nbs / "profiles.yaml").write_text("good:\n  smoke: {value: 2}\nbad:\n  smoke: {value: 3}\n  other: {}\n")
    return nbs


def test_report_records_passes_and_failures(collection, tmp_path):
    out = tmp_path / "out"
    report = run_collection("smoke", collection, out)
    assert report["summary"] == {"passed": 1, "failed": 1} and report["schema"] == 1
    good, bad = report["results"]
    assert (good["notebook"], good["status"], good["outputs"]) == ("good", "passed", ["v2.txt"])
    assert bad["status"] == "failed" and bad["error"]["ename"] == "ValueError"
    # the index is into the executed notebook the report links, after papermill's injected-parameters cell
    assert bad["error"]["evalue"] == "value=3 is wrong" and bad["error"]["cell"] == 2
    assert bad["partial_files"] == ["half.txt"] and "outputs" not in bad  # partial files are never results
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    md = (out / "report.md").read_text()
    assert "1 passed, 1 failed" in md and "| bad | failed |" in md and "ValueError: value=3 is wrong" in md
    assert (out / "good.ipynb").is_file() and (out / "bad.ipynb").is_file()


def test_only_and_unknown_names(collection, tmp_path):
    report = run_collection("smoke", collection, tmp_path / "o", only=["good"])
    assert [r["notebook"] for r in report["results"]] == ["good"]
    with pytest.raises(ValueError, match="--only nope: no such notebook.*good"):
        run_collection("smoke", collection, tmp_path / "o", only=["nope"])
    with pytest.raises(ValueError, match="--profile 'kaggle' is not defined.*other, smoke"):
        run_collection("kaggle", collection, tmp_path / "o")


def test_cli_run_exit_codes(collection, tmp_path, capsys):
    assert cli.main(["run", "--profile", "smoke", "--notebooks", str(collection), "--only", "good",
                     "--out", str(tmp_path / "a")]) == 0
    assert cli.main(["run", "--profile", "smoke", "--notebooks", str(collection), "--out", str(tmp_path / "b")]) == 1
    assert cli.main(["run", "--profile", "nope", "--notebooks", str(collection), "--out", str(tmp_path / "c")]) == 2
    assert "is not defined" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "b" / "report.json")]) == 0
    assert "| bad | failed |" in capsys.readouterr().out


def test_cli_doctor_and_tiny(tmp_path, capsys):
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "CPU only" in out and "diffusers 0.42" in out
    assert cli.main(["tiny", "sdxl-vae-fp16-fix", "--out", str(tmp_path)]) == 0
    from genhelpers.tiny import TWIN_VERSION

    assert (tmp_path / f"sdxl-vae-fp16-fix-v{TWIN_VERSION}" / "config.json").is_file()
