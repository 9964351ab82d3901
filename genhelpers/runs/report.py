"""The report a run leaves, in four forms from one dict: report.json (versioned schema), report.md (people, in
a terminal or a pull request), report.html (one self-contained page with previews of what each notebook made)
and junit.xml (CI systems). ``compare(old, new)`` says what broke, what got fixed and what got slower."""
from __future__ import annotations

import base64
import html
import io
import xml.etree.ElementTree as ET
from pathlib import Path

from ..outputs.media import atomic_path, write_json

SCHEMA = 2  # 1: one profile, passed/failed only. 2: profiles, statuses, error classes, cells, memory, skipped
SLOWER = 1.5
BAD = ("failed", "timeout", "kernel died")


def _results(report: dict) -> dict:
    """{profile/notebook: result}, for schema 1 and 2 reports alike."""
    return {f"{r.get('profile', report.get('profile'))}/{r['notebook']}": r for r in report.get("results", [])}


def _mib(v) -> str:
    if not v:
        return "–"
    return " / ".join(f"{x:,}" for x in v) if isinstance(v, list) else f"{v:,}"


def md(text) -> str:
    """Text a notebook controls (names, messages, file names) made inert in a Markdown table cell: no raw HTML,
    no column break, no code span or link it could open or close, on one line."""
    from .faults import plain

    text = " ".join(plain(str(text)).split())
    for ch, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "&#124;"), ("`", "&#96;"),
                       ("[", "&#91;"), ("]", "&#93;"), ("\\", "&#92;")):
        text = text.replace(ch, entity)
    return text


def _error_text(r: dict, width: int = 160) -> str:
    """The failure in one line (Markdown-safe: see ``md``)."""
    e = r.get("error")
    if not e:
        return md(r.get("reason", ""))
    return f"{md(e.get('class', '?'))} `{md(e.get('signature', ''))}` {md(e['ename'])}: {md(e['evalue'][:width])}"


def headline(report: dict) -> str:
    s = report["summary"]
    parts = [f"{n} {k}" for k, n in s.items() if n or k in ("passed", "failed")]
    return f"{', '.join(parts)} · {report['duration_s']:.1f} s · started {report['started']}"


def markdown(report: dict) -> str:
    profiles = report.get("profiles") or [report["profile"]]
    lines = [f"# Notebook run — profile {', '.join(f'`{p}`' for p in profiles)}", "", headline(report), "",
             "| notebook | profile | status | duration | peak host MiB | peak GPU MiB | outputs | error |",
             "| --- | --- | --- | ---: | ---: | ---: | --- | --- |"]
    for r in report["results"]:
        outs = r.get("outputs") or []
        shown = ", ".join(md(o) for o in outs[:6]) + (f" (+{len(outs) - 6})" if len(outs) > 6 else "")
        status = r["status"] + (" (resumed)" if r.get("resumed") else "")
        if r.get("kernel_start_retries"):
            status += f" (kernel restarted {r['kernel_start_retries']}× at start)"
        lines.append(f"| {md(r['notebook'])} | {md(r.get('profile', report.get('profile')))} | {md(status)} | "
                     f"{r.get('duration_s', 0):.1f} s | {_mib(r.get('host_peak_mib'))} | {_mib(r.get('gpu_peak_mib'))} "
                     f"| {shown} | {_error_text(r)} |")
    v = report.get("versions", {})
    lines += ["", "Versions: " + ", ".join(f"{md(k)} {md(val)}" for k, val in v.items() if val), ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- HTML
THUMB = 160  # pixels high
GIF_FRAMES = 48
MAX_PREVIEW_PIXELS = 64_000_000  # larger pictures get a note instead of a preview (a decompression bomb is tiny)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _thumbnail(path: Path) -> str | None:
    """A small inline preview: GIFs shrunk frame by frame (they still move), pictures as a small JPEG; None for a
    picture that cannot or should not be decoded (too many pixels: see MAX_PREVIEW_PIXELS)."""
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as im:  # reads the header only: the size is known before any pixel is decoded
            if im.width * im.height > MAX_PREVIEW_PIXELS:
                return None
            scale = min(1.0, THUMB / im.height)
            size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            buf = io.BytesIO()
            if path.suffix.lower() == ".gif" and getattr(im, "n_frames", 1) > 1:
                frames = [f.convert("RGB").resize(size) for f in ImageSequence.Iterator(im)][:GIF_FRAMES]
                frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                               duration=im.info.get("duration", 100))
                return _data_uri(buf.getvalue(), "image/gif")
            im.seek(0)
            im.convert("RGB").resize(size).save(buf, format="JPEG", quality=80)
            return _data_uri(buf.getvalue(), "image/jpeg")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def previews(folder: Path, outputs: list[str], limit: int = 5) -> list[tuple[str, str]]:
    """(name, data URI) of the outputs worth a look: grids, animations, mesh previews and strips when there are
    any (they already show the single pictures), else the first pictures."""
    pictures = [o for o in outputs if o.lower().endswith((".png", ".gif", ".jpg", ".jpeg"))]
    summary = sorted((o for o in pictures if o.endswith(".gif") or any(w in o for w in ("grid", "preview", "strip"))),
                     key=lambda o: (0 if "grid" in o else 1 if o.endswith(".gif") else 2, o))
    out = []
    for name in (summary or sorted(pictures))[:limit]:
        out.append((name, _thumbnail(folder / name)))
    return out


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.4em;vertical-align:top;text-align:left}
.passed{color:#17803d}.failed,.timeout,.kernel-died{color:#b3261e;font-weight:600}.skipped{color:#777}
.thumbs img{height:160px;margin:0 .3em .3em 0;border:1px solid #ccc}
code,pre{background:#f5f5f5;padding:.1em .3em}pre{white-space:pre-wrap;max-height:20em;overflow:auto}
.num{text-align:right;white-space:nowrap}
"""


def render_html(report: dict, root: Path) -> str:
    esc = html.escape
    profiles = report.get("profiles") or [report["profile"]]
    rows = []
    for r in report["results"]:
        status = r["status"]
        folder = root / (r.get("executed", r["notebook"] + ".ipynb")).removesuffix(".ipynb")
        thumbs = "".join(f'<img src="{uri}" height="{THUMB}" title="{esc(name)}" alt="{esc(name)}">' if uri else
                         f"<small>{esc(name)}: no preview (not a picture this page can show, or over "
                         f"{MAX_PREVIEW_PIXELS // 1_000_000} megapixels)</small> "
                         for name, uri in previews(folder, r.get("outputs") or []))
        detail = ""
        if r.get("error"):
            e = r["error"]
            detail = (f"<div><b>{esc(e.get('class', ''))}</b> <code>{esc(e.get('signature', ''))}</code> "
                      f"{esc(e['ename'])}: {esc(e['evalue'][:500])}"
                      + (f" (cell {e['cell']})" if e.get("cell") is not None else "") + "</div>"
                      + (f"<details><summary>traceback</summary><pre>{esc(e['traceback'])}</pre></details>"
                         if e.get("traceback") else ""))
        elif r.get("reason"):
            detail = f"<div>{esc(r['reason'])}</div>"
        if r.get("partial_files"):
            detail += f"<div>partial files (not results): {esc(', '.join(r['partial_files'][:8]))}</div>"
        slow = sorted(r.get("cells") or [], key=lambda c: -c["duration_s"])[:3]
        cells = ", ".join(f"cell {c['index']}: {c['duration_s']:.1f} s" for c in slow)
        outs = len(r.get("outputs") or [])
        rows.append(
            f"<tr><td><b>{esc(r['notebook'])}</b><br><small>{esc(str(r.get('profile', '')))}</small></td>"
            f'<td class="{esc(status.replace(" ", "-"))}">{esc(status)}{" (resumed)" if r.get("resumed") else ""}</td>'
            f'<td class="num">{r.get("duration_s", 0):.1f} s</td>'
            f'<td class="num">{_mib(r.get("host_peak_mib"))}</td><td class="num">{_mib(r.get("gpu_peak_mib"))}</td>'
            f'<td><div class="thumbs">{thumbs}</div>{detail}'
            f'<small>{outs} output file(s){" · slowest " + esc(cells) if cells else ""}</small></td></tr>')
    versions = ", ".join(f"{k} {v}" for k, v in report.get("versions", {}).items() if v)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Notebook run {esc(report['started'])}</title>"
            f"<style>{_CSS}</style></head><body><h1>Notebook run — {esc(', '.join(profiles))}</h1>"
            f"<p>{esc(headline(report))} · {esc(str(report.get('workers', 1)))} worker(s)"
            f"{' · GPUs ' + esc(', '.join(report['gpus'])) if report.get('gpus') else ''}</p>"
            "<table><tr><th>notebook</th><th>status</th><th>duration</th><th>peak host MiB</th><th>peak GPU MiB</th>"
            f"<th>outputs</th></tr>{''.join(rows)}</table><p><small>{esc(versions)} · report schema "
            f"{report.get('schema')}</small></p></body></html>")


# ------------------------------------------------------------------------------------------------ JUnit
def junit(report: dict) -> str:
    """JUnit XML, well-formed whatever a notebook wrote: every string passes through ``faults.plain`` (no escape
    sequences, no character XML 1.0 forbids); ElementTree escapes the markup."""
    from .faults import plain

    def x(text) -> str:
        return plain(str(text))

    suites = ET.Element("testsuites", name="genai-notebooks")
    by_profile: dict[str, list[dict]] = {}
    for r in report["results"]:
        by_profile.setdefault(str(r.get("profile", report.get("profile"))), []).append(r)
    for profile, results in by_profile.items():
        suite = ET.SubElement(suites, "testsuite", name=x(f"notebooks.{profile}"), tests=str(len(results)),
                              failures=str(sum(r["status"] == "failed" for r in results)),
                              errors=str(sum(r["status"] in ("timeout", "kernel died") for r in results)),
                              skipped=str(sum(r["status"] == "skipped" for r in results)),
                              time=f"{sum(r.get('duration_s', 0) for r in results):.2f}",
                              timestamp=report["started"])
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=x(f"notebooks.{profile}"), name=x(r["notebook"]),
                                 time=f"{r.get('duration_s', 0):.2f}")
            e = r.get("error")
            if r["status"] == "skipped":
                ET.SubElement(case, "skipped", message=x(r.get("reason", "")))
            elif r["status"] in BAD and e:
                tag = "failure" if r["status"] == "failed" else "error"
                node = ET.SubElement(case, tag, type=x(e.get("class", "other")),
                                     message=x(f"[{e.get('signature', '')}] {e['ename']}: {e['evalue'][:300]}"))
                node.text = x(e.get("traceback") or e["evalue"])
            if r.get("outputs"):
                ET.SubElement(case, "system-out").text = x("\n".join(r["outputs"]))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


# ---------------------------------------------------------------------------------------------- compare
def compare(old: dict, new: dict, slower: float = SLOWER) -> dict:
    """New failures, fixes, failures that stayed (same or another signature), and passes > ``slower``× slower."""
    a, b = _results(old), _results(new)
    out = {"new_failures": [], "fixed": [], "still_failing": [], "slower": [], "added": sorted(set(b) - set(a)),
           "removed": sorted(set(a) - set(b))}
    for key in sorted(set(a) & set(b)):
        ra, rb = a[key], b[key]
        bad_a, bad_b = ra["status"] in BAD, rb["status"] in BAD
        sig = lambda r: (r.get("error") or {}).get("signature")  # noqa: E731
        if bad_b and not bad_a:
            out["new_failures"].append({"key": key, "status": rb["status"], "error": _error_text(rb)})
        elif bad_a and not bad_b and rb["status"] == "passed":
            out["fixed"].append({"key": key})
        elif bad_a and bad_b:
            out["still_failing"].append({"key": key, "same": sig(ra) == sig(rb) and sig(ra) is not None,
                                         "error": _error_text(rb)})
        elif ra["status"] == rb["status"] == "passed" and ra.get("duration_s") and not rb.get("resumed"):
            ratio = rb["duration_s"] / ra["duration_s"]
            if ratio > slower:
                out["slower"].append({"key": key, "old_s": ra["duration_s"], "new_s": rb["duration_s"],
                                      "ratio": round(ratio, 2)})
    for r in b.values():  # a failure new to this run also counts when the notebook did not exist before
        key = f"{r.get('profile', new.get('profile'))}/{r['notebook']}"
        if key in out["added"] and r["status"] in BAD:
            out["new_failures"].append({"key": key, "status": r["status"], "error": _error_text(r)})
    return out


def compare_markdown(diff: dict, old: dict, new: dict) -> str:
    lines = [f"# Compared: {md(old['started'])} → {md(new['started'])}", ""]
    sections = [("New failures", "new_failures", lambda d: f"{md(d['key'])}: {md(d['status'])} — {d['error']}"),
                ("Fixed", "fixed", lambda d: md(d["key"])),
                (f"More than {SLOWER}× slower", "slower",
                 lambda d: f"{md(d['key'])}: {d['old_s']:.1f} s → {d['new_s']:.1f} s (×{d['ratio']})"),
                ("Still failing", "still_failing",
                 lambda d: f"{md(d['key'])}: {'same failure' if d['same'] else 'a different failure'} — {d['error']}"),
                ("Added", "added", md), ("Removed", "removed", md)]
    for title, key, fmt in sections:
        items = diff[key]
        lines.append(f"## {title} ({len(items)})")
        lines += [f"- {fmt(d)}" for d in items] or ["- none"]
        lines.append("")
    return "\n".join(lines)


def write_report(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """All four forms, each written atomically and on its own: a form that cannot be made is reported (on stderr
    and in ``report-errors.txt``) and the others are still written. Returns {format: path} of those written."""
    import sys
    import traceback

    out_dir = Path(out_dir)
    paths = {"json": write_json(out_dir / "report.json", report)}
    problems = []
    for fmt, name, text in (("md", "report.md", lambda: markdown(report)),
                            ("html", "report.html", lambda: render_html(report, out_dir)),
                            ("junit", "junit.xml", lambda: junit(report))):
        try:
            with atomic_path(out_dir / name) as tmp:
                tmp.write_text(text(), encoding="utf-8")
            paths[fmt] = out_dir / name
        except Exception as e:  # one form failing must not take the others down
            problems.append(f"{name}: {type(e).__name__}: {e}\n{traceback.format_exc()}")
            print(f"⚠ could not write {name}: {type(e).__name__}: {e}", file=sys.stderr)
    if problems:
        (out_dir / "report-errors.txt").write_text("\n".join(problems), encoding="utf-8")
    return paths
