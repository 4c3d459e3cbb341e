"""The notebook of examples/ runs from top to bottom on the clone's MNIST
subset (CI installs nbclient, ipykernel, matplotlib, tqdm and ipywidgets;
skipped where they are missing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["mnist_rules.ipynb"])
def test_the_example_notebook_runs(name):
    for module in ["nbclient", "nbformat", "ipykernel", "matplotlib", "tqdm"]:
        pytest.importorskip(module, reason=f"{module} is not installed (the notebook's tools)")
    # The subset, not all of MNIST, even where $BIPROP_DATA is set (CI): a
    # run of seconds, the same on every machine.
    env = {k: v for k, v in os.environ.items() if k != "BIPROP_DATA"}
    r = subprocess.run(
        [sys.executable, str(REPO / "examples" / "run_notebook.py"), str(REPO / "examples" / name)],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 figures" in r.stdout, r.stdout
