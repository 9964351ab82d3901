"""One notebook run in its own process: ``python -m genhelpers.runs.worker JOB.json``. The runner starts one
per notebook so it can watch, time out and survive it; the result is written atomically to the job's file."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main(spec_path: str) -> int:
    from ..outputs.media import write_json
    from .runner import run_notebook

    spec = json.loads(Path(spec_path).read_text())
    result = run_notebook(spec["notebook"], spec["parameters"], spec["out_dir"], timeout=spec.get("timeout"))
    write_json(Path(spec["result"]), result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
