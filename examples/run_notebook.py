"""Executes a notebook of examples/ from top to bottom in a fresh kernel, as CI
does, so that it cannot rot; fails on the first cell that raises.

    python examples/run_notebook.py                 # examples/mnist_rules.ipynb
    python examples/run_notebook.py --save          # and writes the outputs into it

Needs nbclient, nbformat and ipykernel (and what the notebook imports). With
``--save`` the progress bars' widgets are left out of the file: a page that
shows the notebook cannot draw them, and would print their first state, 0%.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
WIDGET = "application/vnd.jupyter.widget-view+json"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebook", nargs="?", type=Path, default=HERE / "mnist_rules.ipynb")
    p.add_argument("--save", action="store_true", help="write the outputs into the notebook")
    p.add_argument("--timeout", type=int, default=600, help="seconds a cell may take")
    args = p.parse_args()
    path = args.notebook.resolve()
    nb = nbformat.read(path, as_version=4)
    start = time.monotonic()
    # Run where the notebook lies, as Jupyter runs it.
    NotebookClient(
        nb, timeout=args.timeout, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    took = time.monotonic() - start
    figures = sum(
        "image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    print(f"{path.name}: {len(nb.cells)} cells ran in {took:.0f} s, {figures} figures")
    if figures == 0:
        print("run_notebook: the notebook drew no figure", file=sys.stderr)
        return 1
    if args.save:
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs = [o for o in c.outputs if WIDGET not in o.get("data", {})]
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
