"""The report a run leaves: report.json (machine-readable) and report.md (for people)."""
from __future__ import annotations

from pathlib import Path

from ..media import atomic_path, write_json


def markdown(report: dict) -> str:
    s = report["summary"]
    lines = [
        f"# Notebook run — profile `{report['profile']}`",
        "",
        f"{s['passed']} passed, {s['failed']} failed · {report['duration_s']:.1f} s · started {report['started']}",
        "",
        "| notebook | status | duration | outputs | error |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for r in report["results"]:
        outs = r.get("outputs") or []
        shown = ", ".join(f"`{o}`" for o in outs[:6]) + (f" (+{len(outs) - 6})" if len(outs) > 6 else "")
        err = r.get("error")
        err = f"{err['ename']}: {err['evalue']}".replace("|", "\\|").replace("\n", " ")[:200] if err else ""
        lines.append(f"| {r['notebook']} | {r['status']} | {r['duration_s']:.1f} s | {shown} | {err} |")
    v = report.get("versions", {})
    lines += ["", "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val), ""]
    return "\n".join(lines)


def write_report(report: dict, out_dir: str | Path) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    js = write_json(out_dir / "report.json", report)
    md = out_dir / "report.md"
    with atomic_path(md) as tmp:
        tmp.write_text(markdown(report), encoding="utf-8")
    return js, md
