"""The half-precision stream (issue 21): every notebook (not the solutions) runs in the smoke profile on the CPU with
GPTFORALL_PRECISION=bf16, the precision a GPU from Ampere on trains in. The model loads with half-precision weights
where a GPU would have them (models.default_dtype), the Trainer computes under bf16 autocast, and every guard and
every assertion of the notebook runs as on a card. Precision-dependent tolerances come from env.ROUNDING_TOLERANCE.

What it cannot show: anything that depends on CUDA itself (kernels, device placement, memory): see
tests/test_device_hygiene.py for the device check and benchmarks/gpu_session.sh for the run on a card.
Runs land in reports/smoke-bf16/ (and reports/smoke-fp16/), apart from the fp32 figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import recorded_figures

from gptforall_utils import course

NOTEBOOKS = [p.stem for p in course.discover()]


@pytest.mark.notebooks
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_runs_in_bf16(notebook_run, stem):
    recorded_figures(notebook_run(stem, variant="bf16"))
    # The run really was in bf16: env.start prints the precision and where it came from.
    executed = Path(notebook_run(stem, variant="bf16").executed).read_text()
    assert "precision bf16 (GPTFORALL_PRECISION)" in executed, stem
