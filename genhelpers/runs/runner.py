"""Execute notebooks x a profile with papermill; one result dict per notebook."""
from __future__ import annotations

import datetime as _dt
import os
import time
from pathlib import Path

import yaml

from ..media import versions
from ..widgets import HEADLESS
from .report import write_report


def load_profiles(path: str | Path) -> dict:
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping notebook -> profile -> parameters")
    return data


def profile_names(profiles: dict) -> list[str]:
    return sorted({p for per_nb in profiles.values() for p in per_nb})


def _files(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def run_notebook(notebook: str | Path, parameters: dict, out_dir: str | Path, timeout: int | None = None,
                 kernel: str = "python3") -> dict:
    """Run one notebook with papermill. Outputs go to ``out_dir/<name>/``, the executed notebook beside it."""
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
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        pm.execute_notebook(str(notebook), str(executed), parameters=params, kernel_name=kernel,
                            cwd=str(notebook.parent), progress_bar=False, execution_timeout=timeout)
        result["status"] = "passed"
    except pm.PapermillExecutionError as e:
        result["status"] = "failed"
        result["error"] = {"ename": e.ename, "evalue": e.evalue, "cell": e.cell_index}
    except Exception as e:  # kernel died, timeout, bad notebook: recorded, the next notebook still runs
        result["status"] = "failed"
        result["error"] = {"ename": type(e).__name__, "evalue": str(e).strip()[:500], "cell": None}
    finally:
        if previous is None:
            os.environ.pop(HEADLESS, None)
        else:
            os.environ[HEADLESS] = previous
    result["duration_s"] = round(time.perf_counter() - t0, 2)
    files = _files(files_dir)
    # a failed run's files are partial: listed apart, never presented as outputs
    result["outputs" if result["status"] == "passed" else "partial_files"] = files
    return result


def run_collection(profile: str, notebooks_dir: str | Path, out_dir: str | Path, only=None, timeout=None,
                   profiles_file: str | Path | None = None, overrides: dict | None = None) -> dict:
    notebooks_dir = Path(notebooks_dir)
    profiles = load_profiles(profiles_file or notebooks_dir / "profiles.yaml")
    if profile not in profile_names(profiles):
        known = ", ".join(profile_names(profiles))
        raise ValueError(f"--profile {profile!r} is not defined in profiles.yaml; known: {known}")
    names = [n for n in profiles if profile in profiles[n]]
    if only:
        unknown = sorted(set(only) - set(profiles))
        if unknown:
            raise ValueError(f"--only {', '.join(unknown)}: no such notebook in profiles.yaml; "
                             f"known: {', '.join(profiles)}")
        names = [n for n in names if n in only]
    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    results = []
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name} ({profile}) …", flush=True)
        r = run_notebook(notebooks_dir / f"{name}.ipynb", {**profiles[name][profile], **(overrides or {})},
                         out_dir, timeout=timeout)
        print(f"    {r['status']} in {r['duration_s']:.1f} s" + (f": {r['error']['ename']}: {r['error']['evalue']}"
                                                               if r["status"] != "passed" else ""), flush=True)
        results.append(r)
    report = {
        "schema": 1,
        "profile": profile,
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - t0, 2),
        "versions": versions(),
        "summary": {s: sum(r["status"] == s for r in results) for s in ("passed", "failed")},
        "results": results,
    }
    write_report(report, out_dir)
    return report
