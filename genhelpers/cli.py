"""`genhelpers run | report | doctor | tiny`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def cmd_run(a) -> int:
    from .runs import run_collection

    report = run_collection(a.profile, a.notebooks, a.out or f"outputs/{a.profile}", only=a.only, timeout=a.timeout)
    print(f"report: {Path(a.out or f'outputs/{a.profile}') / 'report.md'}")
    return 0 if report["summary"]["failed"] == 0 else 1


def cmd_report(a) -> int:
    from .runs.report import markdown

    print(markdown(json.loads(Path(a.report).read_text())))
    return 0


def cmd_doctor(a) -> int:
    from .doctor import render, table
    from .machines import runtime_for
    from .media import versions
    from .runs import load_profiles
    from .runtime import detect
    from .stack import outdated

    rt = runtime_for(a.gpu) if a.gpu else detect()
    print(("described machine " + a.gpu + ": " if a.gpu else "this machine: ") + rt.summary())
    print("versions here: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    old = outdated()
    for name, v in old.items():
        print(f"⚠ {name} {v or 'missing'} is older than genhelpers supports (genhelpers.stack.MINIMUM)")
    print(f"\nEach notebook's '{a.profile}' setup, planned as genhelpers.load would (estimates, not measurements):\n")
    print(render(table(load_profiles(Path(a.notebooks) / "profiles.yaml"), rt, a.profile)))
    return 1 if old else 0


def cmd_tiny(a) -> int:
    from . import tiny

    for key in a.names or sorted(tiny.BUILDERS):
        print(f"{key}: {tiny.build(key, root=a.out, force=a.force)}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="genhelpers", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute notebooks with a profile's parameters; writes report.md/json")
    r.add_argument("--profile", default="smoke")
    r.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run just these notebooks (names without .ipynb)")
    r.add_argument("--out", help="output folder (default outputs/<profile>)")
    r.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    r.add_argument("--notebooks", default=str(REPO_NOTEBOOKS), help="folder with the notebooks and profiles.yaml")
    r.set_defaults(fn=cmd_run)
    rep = sub.add_parser("report", help="print a report.json as Markdown")
    rep.add_argument("report")
    rep.set_defaults(fn=cmd_report)
    d = sub.add_parser("doctor", help="will each notebook fit this machine (or --gpu NAME), and with which plan?")
    d.add_argument("--gpu", help="describe another machine instead: CPU, T4, T4x2, P100, L4, A100-40, A100-80, H100")
    d.add_argument("--profile", default="kaggle-t4", help="the notebooks' parameter set to plan (default kaggle-t4)")
    d.add_argument("--notebooks", default=str(REPO_NOTEBOOKS), help="folder with the notebooks and profiles.yaml")
    d.set_defaults(fn=cmd_doctor)
    t = sub.add_parser("tiny", help="build the tiny random-weight twins (cached)")
    t.add_argument("names", nargs="*")
    t.add_argument("--out", default=None, help="folder for the twins (default: the genhelpers cache)")
    t.add_argument("--force", action="store_true", help="rebuild even if cached")
    t.set_defaults(fn=cmd_tiny)
    a = p.parse_args(argv)
    try:
        return a.fn(a)
    except ValueError as e:
        print(f"genhelpers {a.cmd}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
