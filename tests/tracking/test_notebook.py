"""A real notebook executed through a real Jupyter kernel: ln.track() finds it by itself."""

from __future__ import annotations

import os
from typing import Any

import nbclient
import nbformat

import biolake as ln

CELLS = [
    "import biolake as ln\nrun = ln.track(params={'n_neighbors': 15})",
    "print('clustering 3 samples')",
    "import pandas as pd\n"
    "ln.Artifact.from_dataframe(pd.DataFrame({'x': [1, 2]}), key='clusters.parquet').save()",
    "raise ValueError('a typo the user fixes in the next cell')",
    "ln.finish()",
]


def _execute(folder, cells: list[str], env: dict[str, str]) -> Any:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Clustering")]
    notebook.cells += [nbformat.v4.new_code_cell(code) for code in cells]
    path = folder / "clustering.ipynb"
    nbformat.write(notebook, path)
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits them, as from Jupyter Server
    try:
        client = nbclient.NotebookClient(
            notebook,
            timeout=120,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(folder)}},
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return notebook


def test_a_notebook_run_through_a_kernel_is_tracked_by_itself(instance, tmp_path) -> None:
    env = {
        "BIOLAKE_INSTANCE": str(instance.root),
        "JPY_SESSION_NAME": str(tmp_path / "clustering.ipynb"),
    }
    notebook = _execute(tmp_path, CELLS, env)
    assert notebook.cells[4].outputs[0]["ename"] == "ValueError"  # the cell's error is shown
    transform = ln.Transform.get(key="clustering.ipynb")
    assert transform.kind == "notebook"
    assert transform.source_code == "\n\n".join(CELLS)  # code cells only, not the markdown
    run = ln.Run.get(transform=transform)
    # An error in one cell does not end a notebook's run: the user fixes it and goes on.
    assert (run.status, run.params) == ("completed", {"n_neighbors": 15})
    assert ln.Artifact.get(key="clusters.parquet").run == run
    assert "clustering 3 samples" in run.report.load()
    assert notebook.cells[2].outputs[0]["text"] == "clustering 3 samples\n"  # still shown


def test_a_notebook_that_says_nothing_about_its_path_asks_for_it(instance, tmp_path) -> None:
    cells = [
        "import biolake as ln\nfrom biolake.errors import TrackingError\n"
        "try:\n    ln.track()\nexcept TrackingError as e:\n    print(e)",
        "ln.track(path='clustering.ipynb')\nln.finish()",
    ]
    env = {"BIOLAKE_INSTANCE": str(instance.root)}
    os.environ.pop("JPY_SESSION_NAME", None)
    notebook = _execute(tmp_path, cells, env)
    assert "ln.track(path='analysis.ipynb')" in notebook.cells[1].outputs[0]["text"]
    run = ln.Run.get(transform=ln.Transform.get(key="clustering.ipynb"))
    assert run.status == "completed"
