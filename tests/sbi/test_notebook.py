"""The SBI notebook runs top to bottom in its fast mode."""

import os
from pathlib import Path

import pytest


@pytest.mark.slow
def test_sbi_notebook_runs_in_fast_mode():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = Path(__file__).parents[2] / "notebooks" / "sbi.ipynb"
    nb = nbformat.read(path, as_version=4)
    os.environ["JAXGEN_FAST"] = "1"
    try:
        nbclient.NotebookClient(nb, timeout=900, kernel_name="python3").execute()
    finally:
        os.environ.pop("JAXGEN_FAST", None)
