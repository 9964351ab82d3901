"""What the notebook tests share: the profiles, the parameters cell, how a stopped run and a re-run are checked."""
import ast
import json
import os
import subprocess
import sys

import nbformat
import yaml
from PIL import Image

from ..conftest import NOTEBOOKS

PROFILES = yaml.safe_load((NOTEBOOKS / "profiles.yaml").read_text())
ALL = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
# the torch threads each kernel of the session's batch gets (two kernels at a time share the cores, as in
# genhelpers.runs.runner.run_jobs): a re-execution that must reproduce a batch run gets the same
BATCH_THREADS = max(1, (os.cpu_count() or 1) // 2)


def parameters_cell(nb):
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    return cells[0]


def parameter_names(nb) -> dict:
    tree = ast.parse(parameters_cell(nb).source)
    out = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, "parameters cell: plain assignments only"
        out[node.targets[0].id] = ast.literal_eval(node.value)  # plain literals only
    return out



def assert_stopped(result, out_dir, ename, evalue, stops_at):
    """A bad input failed the run in the cell that checks inputs (so before any model loaded), with the
    expected error, and left no files behind."""
    assert result["status"] == "failed"
    assert result["error"]["ename"] == ename and evalue in result["error"]["evalue"]
    nb = nbformat.read(out_dir / f"{result['notebook']}.ipynb", as_version=4)
    failing = next(c for c in nb.cells if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs))
    assert stops_at in failing.source and ("genhelpers.load(" not in failing.source or stops_at == "genhelpers.load(")
    assert result["partial_files"] == [] and "outputs" not in result


def placeholders(override: dict, twin: str, component: str, picture_size: tuple[int, int]):
    """A ``RUNS`` row's prepare step for bad inputs that need files: ``{"image": "picture"}`` becomes a picture of
    ``picture_size`` and ``{"model": "broken"}`` a copy of twin ``twin`` without ``component``, made in the run's
    own folder before the session's batch; any other override is used as it is."""
    def prepare(folder):
        if override.get("image") == "picture":
            Image.new("RGB", picture_size).save(folder / "picture.png")
            return {**override, "image": str(folder / "picture.png")}
        if override.get("model") == "broken":
            from genhelpers.twins import registry

            return {**override, "model": broken_copy(registry.build(twin), component, folder)}
        return override
    return prepare


def broken_copy(twin, component, tmp_path) -> str:
    """A copy of a twin's folder without one component, as a half-finished download leaves it."""
    import shutil

    shutil.copytree(twin, tmp_path / "broken")
    shutil.rmtree(tmp_path / "broken" / component)
    return str(tmp_path / "broken")


def from_collection(collection, *names):
    """(output folder, the run's result) of one notebook, or {name: result} of several."""
    out, results = collection
    return out, (results[names[0]] if len(names) == 1 else {n: results[n] for n in names})



def nbval_start(path, tmp_path, environ=None) -> subprocess.Popen:
    """Start re-executing an executed notebook with nbval --nbval-lax (cells marked NBVAL_CHECK_OUTPUT must match),
    in a fresh kernel with the torch threads the batch's kernel had (``environ``: default this process's)."""
    from genhelpers.platform.runtime import MAX_THREADS

    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "empty.ini").write_text("[pytest]\n")
    env = {**(os.environ if environ is None else environ), MAX_THREADS: str(BATCH_THREADS),
           "OMP_NUM_THREADS": str(BATCH_THREADS)}
    return subprocess.Popen([sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider",
                             "--rootdir", str(tmp_path), "-c", str(tmp_path / "empty.ini"), str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)


def assert_reproduces(done: subprocess.CompletedProcess):
    """An nbval re-execution (the session's ``nbval_runs``) found every checked cell the same."""
    assert done.returncode == 0 and " passed" in done.stdout, done.stdout[-3000:]


def assert_summary_recorded(path):
    """The executed copy (papermill, earlier in this run) is what nbval would compare against: no cell failed and
    every `# NBVAL_CHECK_OUTPUT` cell printed its summary. Re-executing it with nbval (a second full run) is kept
    for sdxl and the clip classroom, where cross-kernel determinism is the point (issue 20); elsewhere the second run
    only repeats the first."""
    nb = nbformat.read(path, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    checked = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("# NBVAL_CHECK_OUTPUT")]
    assert checked and all(any(o.output_type == "stream" and o.text.strip() for o in c.outputs) for c in checked)



def read_clip(path):
    import imageio.v3 as iio

    return iio.imread(path, index=None)



def check_clip(folder, frames, size):
    side = json.loads((folder / "clip.json").read_text())
    assert side["clip"]["frames"] == frames and side["generation"]["frames"] == side["gif_frames"] == frames
    assert Image.open(folder / "clip.gif").size == size and Image.open(folder / "clip.gif").n_frames == frames
    return side

