"""Shared fixtures. Tests never reach the Hub: HF_HUB_OFFLINE=1 is set before anything imports.

The Hub path is still tested, in every clone: `hub_mirror` serves Hub rows (and a model folder) through
GPTFORALL_HUB_MIRROR, the same mechanism instructors use without network. Two sources of Hub rows, in the same layout:
the course-written fixtures of tests/hub_fixtures/ (always there; every quirk the loaders handle) and the real rows
of ../shared/hub_samples (where that folder exists). The notebook runs use one source per session (the samples where
they exist, else the fixtures); the unit tests that take `hub_source`/`use_hub_mirror` run on each source there is.
GPTFORALL_TEST_HUB_SOURCE=fixtures|samples forces one source for everything.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # forced, not defaulted: no test may reach the real Hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.pop("GPTFORALL_HUB_MIRROR", None)  # a mirror is set only by the tests that build one

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The real Hub rows (exact Hub schema, 40 rows a split): ../shared/hub_samples next to the repository root; optional.
HUB_SAMPLES = ROOT.parent / "shared" / "hub_samples"
# Course-written rows in the same layout and schema, for every Hub dataset the course loads: <org>__<name>[__<config>]/.
HUB_FIXTURES = ROOT / "tests" / "hub_fixtures"
HUB_SOURCE_ENV = "GPTFORALL_TEST_HUB_SOURCE"  # "fixtures" | "samples": force one source of Hub rows


def _forced_source() -> str | None:
    forced = os.environ.get(HUB_SOURCE_ENV, "").strip() or None
    if forced not in (None, "fixtures", "samples"):
        raise pytest.UsageError(f"{HUB_SOURCE_ENV}={forced!r}; use 'fixtures' or 'samples'")
    return forced


def _samples_present() -> bool:
    return (HUB_SAMPLES / "README.md").is_file()


def hub_sources() -> list[str]:
    """The sources of Hub rows the unit tests run on: the fixtures always, the real samples where they exist."""
    forced = _forced_source()
    if forced:
        return [forced]
    return ["fixtures"] + (["samples"] if _samples_present() else [])


def default_hub_source() -> str:
    """The one source the notebook runs use: forced, else the real samples where they exist, else the fixtures."""
    return _forced_source() or ("samples" if _samples_present() else "fixtures")


# The Hub id the gpu profile uses; in the mirror it is served by the embedded 135M checkpoint.
HUB_MODEL = "HuggingFaceTB/SmolLM2-360M-Instruct"
# Its base (pretrained-only) sibling, where notebook 06 starts SFT on the Hub path; also served by the embedded
# checkpoint in the mirror (the code path is tested, not the base model's behaviour).
HUB_BASE_MODEL = "HuggingFaceTB/SmolLM2-360M"
# "offline": the runner's defaults. "hub": DATA="hub" and HUB_MODEL from a Hub mirror. "bf16"/"fp16": offline with
# GPTFORALL_PRECISION set, the half-precision stream (half-precision weights where a GPU would have them, the same
# autocast and guards, on the CPU).
VARIANTS = ("offline", "hub", "bf16", "fp16")


def hub_samples() -> Path:
    """The hub_samples folder (the real rows); fails, saying why, when they are absent (`hub_source` tests only
    ask for it where they exist, or where GPTFORALL_TEST_HUB_SOURCE=samples asks for them)."""
    if not _samples_present():
        pytest.fail(f"no Hub samples at {HUB_SAMPLES} (../shared/hub_samples next to the repository root), "
                    f"but {HUB_SOURCE_ENV}=samples asks for them")
    return HUB_SAMPLES


def hub_rows_folder(source: str) -> Path:
    """The folder of Hub dataset folders for a source: the real samples or the course-written fixtures."""
    return hub_samples() if source == "samples" else HUB_FIXTURES


def build_hub_mirror(folder: Path, datasets: dict[str, Path] | None = None,
                     models: dict[str, Path] | None = None, source: str | None = None) -> Path:
    """A Hub mirror in `folder`: a link to every dataset folder of the source's rows (`source`: "samples" or
    "fixtures"; default: default_hub_source()), then the fixtures of datasets the samples lack (UltraFeedback),
    plus `datasets` (folder name -> a dataset folder in the same layout) and `models` (Hub id -> a saved model
    folder). Returns `folder`, ready for GPTFORALL_HUB_MIRROR."""
    folder.mkdir(parents=True, exist_ok=True)
    source = source or default_hub_source()
    sources = [HUB_FIXTURES] + ([hub_samples()] if source == "samples" else [])  # later sources win
    links = {p.name: p for src in sources for p in src.iterdir() if (p / "schema.json").is_file()}
    links.update(datasets or {})
    links.update({hub_id.replace("/", "__"): path for hub_id, path in (models or {}).items()})
    for name, target in links.items():
        link = folder / name
        if not link.exists():
            link.symlink_to(Path(target).resolve(), target_is_directory=True)
    return folder


_MIRRORS: dict[str, Path] = {}


def _session_mirror(tmp_path_factory, source: str) -> Path:
    """One mirror per source per session: the source's rows, ARC-Easy (built from its asset) and the model ids."""
    if source not in _MIRRORS:
        from hub_mirror_arc import FOLDER as ARC_FOLDER
        from hub_mirror_arc import build_arc_mirror

        from gptforall_utils import models

        arc = build_arc_mirror(tmp_path_factory.mktemp("hub_arc"))  # ARC-Easy, from the asset's real Hub rows
        _MIRRORS[source] = build_hub_mirror(
            tmp_path_factory.mktemp(f"hub_mirror_{source}"), datasets={ARC_FOLDER: arc}, source=source,
            models={HUB_MODEL: models.ensure_embedded(), HUB_BASE_MODEL: models.ensure_embedded()})
    return _MIRRORS[source]


@pytest.fixture(params=hub_sources())
def hub_source(request) -> str:
    """'fixtures' (always) and 'samples' (where ../shared/hub_samples exists): a test taking it runs on each."""
    return request.param


@pytest.fixture(scope="session")
def hub_mirror(tmp_path_factory):
    """The notebook runs' Hub mirror: ONE source per session (default_hub_source(): the real rows of
    ../shared/hub_samples where they exist, else the course-written fixtures of tests/hub_fixtures/), plus ARC-Easy
    (built from its asset) and a model folder for HUB_MODEL and HUB_BASE_MODEL. Never skips.

    The 360M ids are served by the embedded 135M checkpoint (a link to its cached folder): the Hub
    path's code is what is tested, not the larger model's weights.
    """
    return _session_mirror(tmp_path_factory, default_hub_source())


@pytest.fixture
def make_hub_mirror(tmp_path, monkeypatch):
    """make_hub_mirror(datasets={folder name: path}, models={hub id: path}, source=...) -> a mirror (the source's
    rows, the fixtures and the extras), set as GPTFORALL_HUB_MIRROR for this test."""

    def make(datasets: dict[str, Path] | None = None, models: dict[str, Path] | None = None,
             source: str | None = None) -> Path:
        folder = build_hub_mirror(tmp_path / f"hub_mirror_{source or 'default'}", datasets, models, source)
        monkeypatch.setenv("GPTFORALL_HUB_MIRROR", str(folder))
        return folder

    return make


@pytest.fixture
def use_hub_mirror(hub_source, tmp_path_factory, monkeypatch):
    """GPTFORALL_HUB_MIRROR set, for one test, to the mirror of `hub_source` (a test taking it runs once per source:
    the fixtures, and the real samples where they exist); HF_HUB_OFFLINE stays set."""
    mirror = _session_mirror(tmp_path_factory, hub_source)
    monkeypatch.setenv("GPTFORALL_HUB_MIRROR", str(mirror))
    return mirror


class NotebookRuns:
    """Runs a notebook through the course runner at most once per (notebook, profile, variant) per session.

    variant "offline": the runner's defaults (embedded model, offline data when the Hub is unreachable);
    runs land in reports/<profile>/ like `make course`'s. Variant "hub": DATA="hub" and MODEL=HUB_MODEL
    served from a Hub mirror (GPTFORALL_HUB_MIRROR, inherited by the kernel); runs land in
    reports/<profile>-hub/, so they never overwrite the offline figures. Variants "bf16" and "fp16": offline with
    GPTFORALL_PRECISION set for the kernel, in reports/<profile>-bf16/ and -fp16/. The session ends by writing
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
            out.mkdir(parents=True, exist_ok=True)
            # Under `pytest -n 2` both workers write the same report: one at a time, each keeping the other's rows.
            with open(out / ".report.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
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
            elif variant == "hub":
                with _environ(GPTFORALL_HUB_MIRROR=str(mirror)):  # the kernel inherits os.environ
                    self.cache[key] = course.run_notebook(path, profile, out, model=HUB_MODEL, data="hub")
            else:
                with _environ(GPTFORALL_PRECISION=variant):
                    self.cache[key] = course.run_notebook(path, profile, out)
        return self.cache[key]


@contextlib.contextmanager
def _environ(**values: str):
    """Set environment variables for the block (a kernel started inside inherits them), then restore them."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def notebook_run():
    """notebook_run("04_sentiment_classification", profile="smoke") -> course.NotebookResult (cached);
    notebook_run(stem, variant="hub", mirror=hub_mirror) runs it on the Hub path from the mirror."""
    from gptforall_utils import course

    runs = NotebookRuns(course.REPORTS)
    yield runs
    runs.write_reports()


def recorded_figures(result, profile: str = "smoke") -> dict:
    """A notebook run's figures, after checking what every stream asserts of every run: it finished, recorded
    numbers, all of them finite, in `profile`."""
    import math

    assert result.status == "ok", f"{result.notebook} failed: {result.error} (executed copy: {result.executed})"
    m = result.metrics
    numbers = {k: v for k, v in m.items() if not isinstance(v, str)}
    assert numbers, f"{result.notebook} recorded no numeric figures"
    assert all(math.isfinite(v) for v in numbers.values()), m
    assert m["profile"] == profile
    return m


def make_run(tmp_path, profile: str = "cpu", device: str = "cpu", precision: str = "fp32", name: str = "t_run"):
    """An env.Run in tmp_path for unit tests, with the device and precision set as a given machine would set them."""
    from gptforall_utils import env

    run = env.start(name, profile, "auto", "offline", str(tmp_path), 0, verbose=False)
    run.device, run.precision = device, precision
    return run


def nan_gradient_at(model, backward: int = 2):
    """Make the `backward`-th backward pass give the model's first LoRA B matrix NaN gradients (a divergence the
    training guard must catch); returns that parameter."""
    lora_b = next(p for n, p in model.named_parameters() if "lora_B" in n)
    calls = {"n": 0}

    def poison(grad):
        calls["n"] += 1
        return grad * float("nan") if calls["n"] == backward else grad

    lora_b.register_hook(poison)
    return lora_b


def sentiment_pairs(tok, n: int = 8):
    """n tokenized prompt/completion examples (label words after review prompts of different lengths, so that
    batches need padding), for the training tests."""
    from gptforall_utils import training

    prompts = [f"Review: film {'very ' * (i % 5)}number {i} was {'great' if i % 2 else 'awful'}.\nSentiment:"
               for i in range(n)]
    completions = [" positive" if i % 2 else " negative" for i in range(n)]
    return training.prompt_completion_dataset(tok, prompts, completions)


@pytest.fixture(scope="session")
def tiny_model():
    """The embedded SmolLM2-135M model and tokenizer (loads in well under a second once cached)."""
    from gptforall_utils import models

    return models.load_model("smollm2-135m-instruct", verbose=False), models.load_tokenizer("smollm2-135m-instruct")


# ---------------------------------------------------------------- two notebooks at a time (`make test`: pytest -n 2)
# Under pytest-xdist every test of one notebook (offline, Hub path, half precision, cpu profile, its figure tests) runs
# on the same worker, so each run is made once and shared, as in a single process. Each worker's kernels get an equal
# share of the cores (OMP_NUM_THREADS), and the controller builds what the workers would otherwise race to build.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(_threads))


def _notebook_number(item) -> str | None:
    """The number of the notebook a test runs: its `stem` parameter, or test_NN_... in a tests/test_notebook_* file."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if isinstance(params.get("stem"), str):
        return params["stem"][:2]
    match = re.match(r"test_(\d\d)_", item.name)
    return match.group(1) if match and item.path.name.startswith("test_notebook") else None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the xdist_group marks into the scheduled groups
def pytest_collection_modifyitems(config, items):
    """One xdist group per notebook; the group holding the longest run (04 in the cpu profile) is scheduled first."""
    for item in items:
        number = _notebook_number(item)
        if number is not None:
            item.add_marker(pytest.mark.xdist_group(f"notebook-{number}"))
    longest = {i for i, item in enumerate(items) if _notebook_number(item) == "04"}
    items[:] = [items[i] for i in sorted(longest)] + [item for i, item in enumerate(items) if i not in longest]


def pytest_sessionstart(session):
    """In the controller of `pytest -n N` (or a plain run): the kernel spec and the embedded model's checkpoint
    exist before any worker needs them (two workers building them at once would collide)."""
    if hasattr(session.config, "workerinput"):  # a worker: its controller did this
        return
    if session.config.getoption("numprocesses", None):
        from gptforall_utils import course, models

        course.ensure_kernel()
        models.ensure_embedded()
