"""Write notebooks/install_cell.py into the first code cell of every notebook (they must all carry the same
cell: it runs before genhelpers exists, so it cannot live in the package). tests/notebooks/test_collection.py
checks it."""
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def main() -> None:
    cell = (NOTEBOOKS / "install_cell.py").read_text().rstrip("\n")
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        if first.source != cell:
            first.source = cell
            nbformat.write(nb, path)
            print(f"updated {path.name}")


if __name__ == "__main__":
    main()
