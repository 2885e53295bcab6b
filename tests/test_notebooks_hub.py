"""The Hub path in CI: every notebook runs in the smoke profile with DATA="hub" and
MODEL="HuggingFaceTB/SmolLM2-360M-Instruct" (the gpu profile's Hub id), served from a Hub mirror of ONE source of Hub rows per session (conftest.hub_mirror): the real rows of
../shared/hub_samples (40 a split) where that folder exists, else the course-written fixtures of tests/hub_fixtures/
(a few rows per dataset, in each Hub dataset's exact schema, with every quirk the loaders handle);
GPTFORALL_TEST_HUB_SOURCE=fixtures|samples forces one. ARC-Easy is built from its offline asset.

The 360M id is served by the embedded 135M checkpoint (the mirror's model folder links to it): these runs
prove the Hub code path (Hub ids, Hub schemas, Hub split layouts), not the larger model. Results land in
reports/smoke-hub/, apart from the offline smoke figures. Never skipped: the fixtures are in every clone.
"""

from __future__ import annotations

import pytest
from conftest import recorded_figures

from gptforall_utils import course
from gptforall_utils.data import instructions

# The notebooks, not their solutions: a solutions notebook loads the same tasks through the same loaders as its
# notebook (checked by test_solutions_load_no_task_their_notebook_does_not), so its Hub-path run proved nothing more.
NOTEBOOKS = [p.stem for p in course.discover()]


def _ok(result):
    assert result.status == "ok", f"failed: {result.error} (executed copy: {result.executed})"
    return result.metrics


@pytest.mark.notebooks
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_runs_on_the_hub_path(notebook_run, hub_mirror, stem):
    recorded_figures(notebook_run(stem, variant="hub", mirror=hub_mirror))


@pytest.mark.notebooks
def test_05_hub_scores_each_dialogue_against_its_three_references(notebook_run, hub_mirror):
    m = _ok(notebook_run("05_dialog_summarization", variant="hub", mirror=hub_mirror))
    # The Hub's test rows come three per dialogue: the smoke run scores 2 dialogues with 3 references each.
    assert m["n_eval"] == 2 and m["n_references"] == 6, m


@pytest.mark.notebooks
def test_06_hub_starts_sft_from_the_base_model_and_shows_a_real_alpaca_row(notebook_run, hub_mirror):
    m = _ok(notebook_run("06_instruction_tuning_alpaca_dolly", variant="hub", mirror=hub_mirror))
    # The Instruct id's base sibling (HuggingFaceTB/SmolLM2-360M) is where SFT starts on the Hub path; the
    # notebook's Alpaca cell asserts the course's template rebuilds the real row's `text` field.
    assert m["starts_from_base_model"] == 1 and m["start_model"] == "HuggingFaceTB/SmolLM2-360M", m


@pytest.mark.notebooks
def test_09_hub_trains_on_categories_dolly_has(notebook_run, hub_mirror):
    m = _ok(notebook_run("09_scaling_out_and_serving", variant="hub", mirror=hub_mirror))
    for key in ("categories_qa", "categories_creative"):
        assert set(m[key].split(",")) <= set(instructions.DOLLY_CATEGORIES), m[key]


def _loaded(path) -> set[str]:
    """The tasks a notebook loads by name: data.load("task", ...)."""
    import json
    import re

    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    return set(re.findall(r"data\.load\(\s*[\"'](\w+)[\"']", code))


@pytest.mark.parametrize("path", course.discover(solutions=True)[len(NOTEBOOKS):], ids=lambda p: p.stem)
def test_solutions_load_no_task_their_notebook_does_not(path):
    notebook = next(p for p in course.discover() if p.stem == path.stem.removesuffix("_solutions"))
    assert _loaded(path) <= _loaded(notebook), (path.stem, _loaded(path) - _loaded(notebook))
