"""Shared fixtures. Tests never reach the Hub: HF_HUB_OFFLINE=1 is set before anything imports.

The Hub path is still tested: `hub_mirror` serves the real Hub rows of ../shared/hub_samples (and a
model folder) through GPTFORALL_HUB_MIRROR, the same mechanism instructors use without network.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # forced, not defaulted: no test may reach the real Hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.pop("GPTFORALL_HUB_MIRROR", None)  # a mirror is set only by the tests that build one

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The real Hub rows (exact Hub schema, 40 rows a split): ../shared/hub_samples next to the repository root.
HUB_SAMPLES = ROOT.parent / "shared" / "hub_samples"
# Datasets the samples lack (e.g. a new task's), as test fixtures in the same layout: <org>__<name>[__<config>]/.
HUB_FIXTURES = ROOT / "tests" / "hub_fixtures"
# The Hub id the gpu profile uses; in the mirror it is served by the embedded 135M checkpoint.
HUB_MODEL = "HuggingFaceTB/SmolLM2-360M-Instruct"
# Its base (pretrained-only) sibling, where notebook 06 starts SFT on the Hub path; also served by the embedded
# checkpoint in the mirror (the code path is tested, not the base model's behaviour).
HUB_BASE_MODEL = "HuggingFaceTB/SmolLM2-360M"
VARIANTS = ("offline", "hub")


def hub_samples() -> Path:
    """The hub_samples folder, or a skip that says why the Hub-path tests cannot run."""
    if not (HUB_SAMPLES / "README.md").is_file():
        pytest.skip(f"no Hub samples at {HUB_SAMPLES} (../shared/hub_samples next to the repository root); "
                    "the Hub-path tests need the real Hub rows")
    return HUB_SAMPLES


def build_hub_mirror(folder: Path, datasets: dict[str, Path] | None = None,
                     models: dict[str, Path] | None = None) -> Path:
    """A Hub mirror in `folder`: a link to every dataset folder of hub_samples and of tests/hub_fixtures/, plus
    `datasets` (folder name -> a dataset folder in the same layout) and `models` (Hub id -> a saved model
    folder). Returns `folder`, ready for GPTFORALL_HUB_MIRROR."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [hub_samples()] + ([HUB_FIXTURES] if HUB_FIXTURES.is_dir() else [])
    links = {p.name: p for src in sources for p in src.iterdir() if (p / "schema.json").is_file()}
    links.update(datasets or {})
    links.update({hub_id.replace("/", "__"): path for hub_id, path in (models or {}).items()})
    for name, target in links.items():
        link = folder / name
        if not link.exists():
            link.symlink_to(Path(target).resolve(), target_is_directory=True)
    return folder


@pytest.fixture(scope="session")
def hub_mirror(tmp_path_factory):
    """A Hub mirror of ../shared/hub_samples (plus ARC-Easy, built from its asset) and a model folder for HUB_MODEL.

    The 360M id is served by the embedded 135M checkpoint (a link to its cached folder): the Hub
    path's code is what is tested, not the larger model's weights. Skips when hub_samples is absent.
    """
    from hub_mirror_arc import FOLDER as ARC_FOLDER
    from hub_mirror_arc import build_arc_mirror

    from gptforall_utils import models

    hub_samples()
    arc = build_arc_mirror(tmp_path_factory.mktemp("hub_arc"))  # ARC-Easy, from the asset's real Hub rows
    return build_hub_mirror(tmp_path_factory.mktemp("hub_mirror"), datasets={ARC_FOLDER: arc},
                            models={HUB_MODEL: models.ensure_embedded(), HUB_BASE_MODEL: models.ensure_embedded()})


@pytest.fixture
def make_hub_mirror(tmp_path, monkeypatch):
    """make_hub_mirror(datasets={folder name: path}, models={hub id: path}) -> a mirror (hub_samples, tests/hub_fixtures
    and the extras), set as GPTFORALL_HUB_MIRROR for this test."""

    def make(datasets: dict[str, Path] | None = None, models: dict[str, Path] | None = None) -> Path:
        folder = build_hub_mirror(tmp_path / "hub_mirror", datasets, models)
        monkeypatch.setenv("GPTFORALL_HUB_MIRROR", str(folder))
        return folder

    return make


@pytest.fixture
def use_hub_mirror(hub_mirror, monkeypatch):
    """GPTFORALL_HUB_MIRROR set to `hub_mirror` for one test (HF_HUB_OFFLINE stays set)."""
    monkeypatch.setenv("GPTFORALL_HUB_MIRROR", str(hub_mirror))
    return hub_mirror


class NotebookRuns:
    """Runs a notebook through the course runner at most once per (notebook, profile, variant) per session.

    variant "offline": the runner's defaults (embedded model, offline data when the Hub is unreachable);
    runs land in reports/<profile>/ like `make course`'s. Variant "hub": DATA="hub" and MODEL=HUB_MODEL
    served from a Hub mirror (GPTFORALL_HUB_MIRROR, inherited by the kernel); runs land in
    reports/<profile>-hub/, so they never overwrite the offline figures. The session ends by writing
    each folder's results.md: a test run doubles as a measured smoke run of the course.
    """

    def __init__(self, reports):
        self.reports = reports
        self.cache = {}

    def folder(self, profile: str, variant: str) -> Path:
        return self.reports / (profile if variant == "offline" else f"{profile}-{variant}")

    def write_reports(self) -> None:
        from gptforall_utils import course

        for profile, variant in sorted({(p, v) for _, p, v in self.cache}):
            results = [r for (_, p, v), r in self.cache.items() if (p, v) == (profile, variant)]
            out = self.folder(profile, variant)
            course.write_report(course.merge_with_earlier(results, out), out, profile)

    def __call__(self, stem: str, profile: str = "smoke", variant: str = "offline", mirror: Path | None = None):
        from gptforall_utils import course

        if variant not in VARIANTS:
            raise ValueError(f"variant {variant!r}; choose one of {VARIANTS}")
        if variant == "hub" and mirror is None:
            raise ValueError("the hub variant needs the hub_mirror fixture's folder: mirror=hub_mirror")
        key = (stem, profile, variant)
        if key not in self.cache:
            paths = course.discover(solutions=True)
            exact = [p for p in paths if p.stem == stem]
            # "04" means the main notebook 04, never its solutions.
            matches = exact or [p for p in paths if p.stem.startswith(stem + "_") and p.parent.name != "solutions"]
            if len(matches) != 1:
                raise ValueError(f"{stem!r} matches {len(matches)} notebooks: {[p.stem for p in matches]}")
            path = matches[0]
            out = self.folder(profile, variant)
            if variant == "offline":
                self.cache[key] = course.run_notebook(path, profile, out)
            else:
                before = os.environ.get("GPTFORALL_HUB_MIRROR")
                os.environ["GPTFORALL_HUB_MIRROR"] = str(mirror)  # the kernel inherits os.environ
                try:
                    self.cache[key] = course.run_notebook(path, profile, out, model=HUB_MODEL, data="hub")
                finally:
                    if before is None:
                        os.environ.pop("GPTFORALL_HUB_MIRROR", None)
                    else:
                        os.environ["GPTFORALL_HUB_MIRROR"] = before
        return self.cache[key]


@pytest.fixture(scope="session")
def notebook_run():
    """notebook_run("04_sentiment_classification", profile="smoke") -> course.NotebookResult (cached);
    notebook_run(stem, variant="hub", mirror=hub_mirror) runs it on the Hub path from the mirror."""
    from gptforall_utils import course

    runs = NotebookRuns(course.REPORTS)
    yield runs
    runs.write_reports()


@pytest.fixture(scope="session")
def tiny_model():
    """The embedded SmolLM2-135M model and tokenizer (loads in well under a second once cached)."""
    from gptforall_utils import models

    return models.load_model("smollm2-135m-instruct", verbose=False), models.load_tokenizer("smollm2-135m-instruct")
