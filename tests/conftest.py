"""Shared fixtures. Tests never reach the Hub: HF_HUB_OFFLINE=1 is set before anything imports."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


class NotebookRuns:
    """Runs a notebook through the course runner at most once per (notebook, profile) per session."""

    def __init__(self, reports):
        self.reports = reports
        self.cache = {}

    def __call__(self, stem: str, profile: str = "smoke"):
        from gptforall_utils import course

        key = (stem, profile)
        if key not in self.cache:
            paths = course.discover(solutions=True)
            exact = [p for p in paths if p.stem == stem]
            # "04" means the main notebook 04, never its solutions.
            matches = exact or [p for p in paths if p.stem.startswith(stem + "_") and p.parent.name != "solutions"]
            if len(matches) != 1:
                raise ValueError(f"{stem!r} matches {len(matches)} notebooks: {[p.stem for p in matches]}")
            path = matches[0]
            self.cache[key] = course.run_notebook(path, profile, self.reports / profile)
        return self.cache[key]


@pytest.fixture(scope="session")
def notebook_run(tmp_path_factory):
    """notebook_run("04_sentiment_classification", profile="smoke") -> course.NotebookResult (cached)."""
    return NotebookRuns(tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="session")
def tiny_model():
    """The embedded SmolLM2-135M model and tokenizer (loads in well under a second once cached)."""
    from gptforall_utils import models

    return models.load_model("smollm2-135m-instruct", verbose=False), models.load_tokenizer("smollm2-135m-instruct")
