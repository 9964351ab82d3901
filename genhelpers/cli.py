"""`genhelpers run | report | doctor | tiny | kaggle`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def cmd_run(a) -> int:
    from .runs import run_collection
    from .runs.runner import failed

    out = Path(a.out or f"outputs/{'+'.join(a.profile)}")
    gpus = None if a.gpus == "auto" else [] if a.gpus == "none" else a.gpus.split(",")
    report = run_collection(a.profile, a.notebooks, out, only=a.only, skip=a.skip, timeout=a.timeout,
                            cell_timeout=a.cell_timeout, workers=a.workers, force=a.force, gpus=gpus)
    print(f"report: {out / 'report.html'} (also report.md, report.json, junit.xml)")
    return 0 if failed(report) == 0 else 1


def cmd_report(a) -> int:
    from .runs.report import compare, compare_markdown, markdown

    if a.compare:
        old, new = (json.loads(Path(p).read_text()) for p in a.compare)
        diff = compare(old, new)
        print(compare_markdown(diff, old, new))
        return 1 if diff["new_failures"] else 0
    if not a.report:
        raise ValueError("give a report.json to print, or --compare OLD NEW")
    print(markdown(json.loads(Path(a.report).read_text())))
    return 0


def cmd_doctor(a) -> int:
    from .outputs.media import versions
    from .platform.machines import runtime_for
    from .platform.runtime import detect
    from .platform.stack import outdated
    from .runs import load_profiles
    from .runs.doctor import render, table

    rt = runtime_for(a.gpu) if a.gpu else detect()
    print(("described machine " + a.gpu + ": " if a.gpu else "this machine: ") + rt.summary())
    print("versions here: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    old = outdated()
    for name, v in old.items():
        print(f"⚠ {name} {v or 'missing'} is older than genhelpers supports (genhelpers.platform.stack.MINIMUM)")
    print(f"\nEach notebook's '{a.profile}' setup, planned as genhelpers.load would (estimates; the rates behind "
          f"them were measured on a GPU, benchmarks/gpu_full_size.json):\n")
    print(render(table(load_profiles(Path(a.notebooks) / "profiles.yaml"), rt, a.profile)))
    return 1 if old else 0


def cmd_tiny(a) -> int:
    from .twins import registry as tiny

    for key in a.names or sorted(tiny.BUILDERS):
        print(f"{key}: {tiny.build(key, root=a.out, force=a.force)}")
    return 0


def cmd_kaggle(a) -> int:
    from .runs import kaggle

    if a.action == "build":
        m = kaggle.build(a.profile, a.out, a.user, a.notebooks, only=a.only, machine=a.machine,
                         private=not a.public, internet=not a.no_internet, wheelhouse=not a.no_wheelhouse)
        print(f"wrote {len(m['kernels'])} push folder(s) and the dataset {m['dataset']} into {a.out}:")
        for k in m["kernels"]:
            print(f"  {k['folder']}/  ->  kaggle kernels push -p {Path(a.out) / k['folder']}")
        print(f"next: genhelpers kaggle push {a.out}   (first time: --new-dataset)")
    elif a.action == "wheel":
        print(f"wrote {kaggle.build_wheel(Path(a.out))} (from the committed files: git archive HEAD)")
    elif a.action == "push":
        for kid in kaggle.push(a.dir, new_dataset=a.new_dataset):
            print(f"pushed {kid}")
    elif a.action == "status":
        for name, state in kaggle.status(a.dir).items():
            print(f"{name}: {state}")
    else:
        report = kaggle.collect(a.dir, a.out)
        print(f"report: {Path(a.out) / 'report.html'} · " + ", ".join(f"{n} {k}" for k, n in report["summary"].items()
                                                                       if n))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="genhelpers", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute notebooks × profiles in parallel; writes report.html/md/json, junit.xml")
    r.add_argument("--profile", nargs="+", default=["smoke"], help="one or more profiles (default smoke)")
    r.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run just these notebooks (names without .ipynb)")
    r.add_argument("--skip", nargs="+", metavar="NOTEBOOK", help="leave these notebooks out (listed as skipped)")
    r.add_argument("--workers", type=int, default=1, help="notebooks run at the same time (default 1)")
    r.add_argument("--gpus", default="auto", help="pin workers to these GPUs, e.g. 0,1 ('auto': all; 'none')")
    r.add_argument("--timeout", type=float, default=None, help="seconds per notebook before it is stopped")
    r.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (papermill)")
    r.add_argument("--force", action="store_true", help="run again what passed in the previous run in --out")
    r.add_argument("--out", help="output folder (default outputs/<profile>)")
    r.add_argument("--notebooks", default=str(REPO_NOTEBOOKS), help="folder with the notebooks and profiles.yaml")
    r.set_defaults(fn=cmd_run)
    rep = sub.add_parser("report", help="print a report.json as Markdown, or compare two runs")
    rep.add_argument("report", nargs="?")
    rep.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"),
                     help="new failures, fixes and notebooks more than 1.5× slower (exit 1 on new failures)")
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
    k = sub.add_parser("kaggle", help="run the notebooks on Kaggle GPUs with the official kaggle client")
    ksub = k.add_subparsers(dest="action", required=True)
    kb = ksub.add_parser("build", help="push folders (notebook + kernel-metadata.json) and the wheel dataset")
    kb.add_argument("--user", required=True, help="your Kaggle user name")
    kb.add_argument("--profile", default="kaggle-t4")
    kb.add_argument("--out", default="outputs/kaggle-build")
    kb.add_argument("--only", nargs="+", metavar="NOTEBOOK")
    kb.add_argument("--machine", default="T4x2", choices=["T4x2"], help="T4x2 (NvidiaTeslaT4; the P100 is retired)")
    kb.add_argument("--public", action="store_true", help="publish the notebooks (default: private)")
    kb.add_argument("--no-internet", action="store_true", help="run offline (weights must be attached)")
    kb.add_argument("--no-wheelhouse", action="store_true", help="leave out the tested versions' wheels")
    kb.add_argument("--notebooks", default=str(REPO_NOTEBOOKS))
    kw = ksub.add_parser("wheel", help="the genhelpers wheel alone, from the committed files (git archive HEAD)")
    kw.add_argument("--out", default="dist")
    for action, text in (("push", "upload the dataset and push every notebook"),
                         ("status", "each pushed notebook's status"),
                         ("collect", "download the outputs and write the report")):
        ka = ksub.add_parser(action, help=text)
        ka.add_argument("dir", nargs="?", default="outputs/kaggle-build", help="the folder kaggle build wrote")
        if action == "push":
            ka.add_argument("--new-dataset", action="store_true", help="create the dataset (first push)")
        if action == "collect":
            ka.add_argument("--out", default="outputs/kaggle", help="where the outputs and report go")
    k.set_defaults(fn=cmd_kaggle)
    a = p.parse_args(argv)
    try:
        return a.fn(a)
    except (ValueError, FileExistsError, FileNotFoundError, RuntimeError) as e:
        print(f"genhelpers {a.cmd}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
