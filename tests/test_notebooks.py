"""Every notebook (and every solutions notebook) runs top to bottom in the smoke profile through the
course runner, in a fresh kernel, and records finite key figures in its metrics.json.

Per-notebook bars live in tests/test_notebook_<NN>*.py and reuse the same cached runs.
"""

from __future__ import annotations

import pytest
from conftest import recorded_figures

from gptforall_utils import course

NOTEBOOKS = [p.stem for p in course.discover(solutions=True)]


@pytest.mark.notebooks
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_runs_in_smoke_profile(notebook_run, stem):
    recorded_figures(notebook_run(stem))
