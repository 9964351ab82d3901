"""The house's rules (CONTRIBUTING.md): the import contracts hold and really bite, modules stay readable, importing
genhelpers stays cheap, and every notebook shows its model call in plain code."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import NOTEBOOKS, REPO

LINT = Path(sys.executable).parent / "lint-imports"
DATA_MODULES = {"genhelpers/hub/catalog.py"}  # one table of published models: data, allowed to be long


def lint(package_root: Path):
    """Run import-linter with the repository's contracts on the package found under ``package_root``."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    return subprocess.run([str(LINT), str(REPO / "pyproject.toml"), "--no-cache", "--no-logo"], cwd=package_root,
                          env=env, capture_output=True, text=True)


def test_the_import_contracts_hold():
    done = lint(REPO)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Contracts: 5 kept, 0 broken." in done.stdout


@pytest.mark.parametrize("room, line, contract", [
    ("hub/loader.py", "from ..twins import registry as _twins", "The real loading path never reaches the twins"),
    ("outputs/media.py", "from ..hub import catalog as _catalog", "Outputs know arrays, pictures and meshes"),
    ("models/dvae.py", "from ..params import RULES as _rules", "No domain imports the rules table"),
    ("hub/memory.py", "from . import loader as _loader", "No circle"),
])
def test_a_wrong_import_fails_the_linter(tmp_path, room, line, contract):
    """The contracts are not decoration: the same import added to a copy of the package breaks them."""
    shutil.copytree(REPO / "genhelpers", tmp_path / "genhelpers", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "genhelpers" / room, "a") as f:
        f.write(f"\n{line}  # deliberate violation\n")
    done = lint(tmp_path)
    assert done.returncode != 0
    broken = [block for block in done.stdout.split("\n\n") if "BROKEN" in block]
    assert any(contract.split()[0] in b for b in broken), done.stdout[-3000:]


def test_no_module_much_over_500_lines_unless_it_is_data():
    long = {str(p.relative_to(REPO)): n for p in (REPO / "genhelpers").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 520}
    assert set(long) <= DATA_MODULES, long


def test_importing_genhelpers_loads_no_heavy_library():
    """The install cell repairs the stack before torch or diffusers is imported; the face must not import them."""
    code = ("import sys, genhelpers; print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'numpy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def code_cells(name):
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


MODEL_CALL_KEYWORDS = {"prompt", "num_inference_steps", "guidance_scale", "image", "prompt_embeds", "num_frames"}


@pytest.mark.parametrize("name", sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")))
def test_the_model_call_is_plain_code(name):
    """The out-of-memory net is a decorator above a small function that makes the call; it never takes the call as
    a lambda, and no notebook hides a model call (a call with prompt=, num_inference_steps=, …) in a lambda."""
    import ast

    for src in code_cells(name):
        for line in src.splitlines():
            if "retry_on_oom" in line:
                assert line.lstrip().startswith("@genhelpers.retry_on_oom("), line
        tree = ast.parse("\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))))
        for node in ast.walk(tree):
            if isinstance(node, ast.Lambda):
                calls = [c for c in ast.walk(node.body) if isinstance(c, ast.Call)]
                hidden = [k.arg for c in calls for k in c.keywords if k.arg in MODEL_CALL_KEYWORDS]
                assert not hidden, f"{name}: a model call inside a lambda: {ast.unparse(node)}"
