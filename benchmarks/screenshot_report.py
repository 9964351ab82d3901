"""Look at a run's report.html the way a maintainer would, without a browser: render it to a PNG.

No headless Chromium can be downloaded on the CI machines (only package registries are reachable), so this uses
WeasyPrint (HTML/CSS -> PDF) and pypdfium2 (PDF -> PNG), both plain pip packages, in whatever environment runs
it: `pip install weasyprint pypdfium2`. Usage:
    python benchmarks/screenshot_report.py outputs/smoke [benchmarks/report_screenshot.png]
GIFs show their first frame; everything else is as the page has it.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def screenshot(report_dir: Path, png: Path, width_px: int = 1500, height_px: int = 2600) -> Path:
    import pypdfium2
    import weasyprint

    page = weasyprint.CSS(string=f"@page {{ size: {width_px}px {height_px}px; margin: 0 }}")
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "report.pdf"
        weasyprint.HTML(report_dir / "report.html").write_pdf(pdf, stylesheets=[page])
        doc = pypdfium2.PdfDocument(pdf)
        page_image = doc[0].render(scale=0.75).to_pil()
        page_image.quantize(colors=128).save(png, optimize=True)  # a small file to keep in the repository
        doc.close()
    return png


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/smoke")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).with_name("report_screenshot.png"))
    try:
        print(screenshot(folder, out))
    except ImportError as e:
        sys.exit(f"{e.name} is missing: pip install weasyprint pypdfium2 (only this script needs them)")
