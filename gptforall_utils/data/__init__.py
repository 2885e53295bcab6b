"""The dataset catalog: for each task a Hub source, an offline source and a local-file option.

Every source is normalised to one schema per task and returned as a `datasets.DatasetDict`
with a "test" split, and a "train" split for every task that is trained on (all but the
evaluation-only benchmark_questions). `DATA` in a notebook's parameters cell is one of
"auto" (Hub when it answers, else offline), "hub", "offline", or a local .jsonl/.csv file.

    from gptforall_utils import data
    ds = data.load("sentiment", source=run.data, seed=run.seed)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import env

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
SOURCES = ("auto", "hub", "offline")


@dataclass(frozen=True)
class Task:
    """A task's schema and its sources.

    columns: the schema every source is normalised to (name -> python type).
    labels: class names for classification tasks; a "label" column then holds an index into it,
    and local files may give either the index or the name.
    hub / offline: functions returning a DatasetDict in the schema.
    """

    name: str
    columns: dict[str, type]
    hub: Callable[[], object]
    offline: Callable[[int], object]
    labels: tuple[str, ...] | None = None
    test_size: float | int = 0.2
    description: str = ""
    may_be_empty: tuple[str, ...] = ()  # text columns allowed to hold "" (e.g. an instruction's context)
    hub_source: str = ""
    offline_source: str = ""
    notes: dict[str, str] = field(default_factory=dict)


REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    REGISTRY[task.name] = task
    return task


def tasks() -> list[str]:
    _load_builtin_tasks()
    return sorted(REGISTRY)


def get_task(name: str) -> Task:
    _load_builtin_tasks()
    if name not in REGISTRY:
        raise ValueError(f"Unknown task {name!r}; tasks: {', '.join(sorted(REGISTRY))}.")
    return REGISTRY[name]


def _load_builtin_tasks() -> None:
    # Each task lives in its own module and registers itself on import.
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


# ---------------------------------------------------------------- validation
def validate(dataset, task: Task, origin: str = "data"):
    """Check a Dataset against a task's schema; convert label names to indices. Returns the dataset.

    Raises ValueError naming the problem and what the task expects.
    """
    expected = ", ".join(f"{c} ({t.__name__})" for c, t in task.columns.items())
    if len(dataset) == 0:
        raise ValueError(f"{origin} is empty; the {task.name} task needs rows with columns {expected}.")
    missing = [c for c in task.columns if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"{origin} lacks column(s) {', '.join(missing)}; the {task.name} task needs {expected}. "
            f"Found: {', '.join(dataset.column_names)}."
        )
    if task.labels is not None and "label" in task.columns:
        dataset = _labels_to_index(dataset, task, origin)
    for column, kind in task.columns.items():
        if kind is str:
            allow_empty = column in task.may_be_empty
            bad = sum(1 for v in dataset[column] if not isinstance(v, str) or (not allow_empty and not v.strip()))
            if bad:
                raise ValueError(f"{origin}: {bad} row(s) have an empty or non-text {column!r}.")
    return dataset


def _labels_to_index(dataset, task: Task, origin: str):
    names = list(task.labels)
    lookup = {n.lower(): i for i, n in enumerate(names)}

    def convert(value):
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            if 0 <= int(value) < len(names):
                return int(value)
            raise ValueError
        if isinstance(value, str):
            v = value.strip().lower()
            if v in lookup:
                return lookup[v]
            if v.isdigit() and int(v) < len(names):
                return int(v)
        raise ValueError

    values = dataset["label"]
    converted = []
    for i, v in enumerate(values):
        try:
            converted.append(convert(v))
        except ValueError:
            raise ValueError(
                f"{origin}: row {i} has label {v!r}; the {task.name} task takes an index 0..{len(names) - 1} "
                f"or one of the names {names}."
            ) from None
    from datasets import ClassLabel

    dataset = dataset.remove_columns("label").add_column("label", converted)
    return dataset.cast_column("label", ClassLabel(names=names))


# ---------------------------------------------------------------- splitting and sampling
def split(dataset, test_size: float | int, seed: int):
    """Deterministic train/test split for a seed (a `split` column, when present, wins)."""
    from datasets import DatasetDict

    if "split" in dataset.column_names:
        parts = {}
        for name in sorted(set(dataset["split"])):
            parts[name] = dataset.filter(lambda r, n=name: r["split"] == n).remove_columns("split")
        if "train" in parts and "test" in parts:
            return DatasetDict(parts)
        raise ValueError("A 'split' column must contain both 'train' and 'test' rows.")
    if len(dataset) < 2:
        raise ValueError(f"Need at least 2 rows to split into train and test, got {len(dataset)}.")
    parts = dataset.train_test_split(test_size=test_size, seed=seed, shuffle=True)
    return DatasetDict({"train": parts["train"], "test": parts["test"]})


def sample(dataset, n: int, seed: int = 0, stratify: str | None = None):
    """n rows chosen reproducibly; with `stratify="label"`, classes as balanced as the data allows."""
    if n <= 0:
        raise ValueError(f"Asked for {n} rows; ask for at least 1.")
    if n > len(dataset):
        raise ValueError(f"Asked for {n} rows but the split has only {len(dataset)}; lower the size.")
    shuffled = dataset.shuffle(seed=seed)
    if stratify is None:
        return shuffled.select(range(n))
    labels = list(shuffled[stratify])
    classes = sorted(set(labels))
    by_class = {c: [i for i, v in enumerate(labels) if v == c] for c in classes}
    picked: list[int] = []
    round_ = 0
    while len(picked) < n:
        for c in classes:
            if round_ < len(by_class[c]) and len(picked) < n:
                picked.append(by_class[c][round_])
        round_ += 1
    return shuffled.select(sorted(picked))


# ---------------------------------------------------------------- loading
def written_offline(path: Path, test_size: float | int) -> Callable[[int], object]:
    """The `offline` loader of a task whose offline data is a file written for this course (data/*.jsonl).

    The file's own `split` column fixes the test set, so results compare across seeds.
    """

    def offline(seed: int):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; it ships with the repository (git checkout data/).")
        return split(read_local(path), test_size, seed)

    return offline


def repo_relative(path: Path) -> str:
    """A data file's path as the repository names it (data/...), for a task's offline_source."""
    return str(path.relative_to(DATA_DIR.parent))


def read_local(file: str | Path):
    """Read a .jsonl/.json/.csv file into a Dataset (no validation)."""
    from datasets import Dataset

    path = Path(file).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"DATA file {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        text = path.read_text(encoding="utf-8")
        if suffix == ".json" and text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            rows = []
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}:{n} is not valid JSON ({e.msg}).") from None
        return Dataset.from_list(rows)
    if suffix == ".csv":
        import csv

        with open(path, newline="", encoding="utf-8") as f:
            return Dataset.from_list(list(csv.DictReader(f)))
    raise ValueError(f"DATA file {path} must be .jsonl, .json or .csv.")


def other_source(source: str) -> str:
    """The source for a task that is not the notebook's main task.

    `DATA` feeds a notebook's main task; the other tasks it loads follow "auto"/"hub"/"offline"
    (a local file holds one task's schema, so it cannot serve them): a file path gives "auto".
    """
    return source if source in SOURCES else "auto"


def load(task: str, source: str = "auto", seed: int = 0):
    """Load a task's data as a DatasetDict in the task's schema.

    source: "auto" (Hub when it answers, else offline), "hub", "offline", or a local file path.
    """
    spec = get_task(task)
    _quiet_datasets()
    if source not in SOURCES:
        path = Path(source).expanduser()
        if path.suffix.lower() not in (".jsonl", ".json", ".csv"):
            raise ValueError(f"DATA={source!r}: use 'auto', 'hub', 'offline' or a .jsonl/.csv file.")
        ds = validate(read_local(path), spec, origin=str(path))
        return _finish(split(ds, spec.test_size, seed), spec)
    if source == "auto":
        source = "hub" if env.hub_available() else "offline"
    if source == "hub":
        if not env.hub_available():
            raise FileNotFoundError(
                f"DATA='hub' but the Hugging Face Hub is not reachable; use DATA='offline' ({spec.offline_source})."
            )
        dd = spec.hub()
    else:
        dd = spec.offline(seed)
    for name in list(dd):
        dd[name] = validate(dd[name], spec, origin=f"{task} ({source}, {name} split)")
    return _finish(dd, spec)


def _quiet_datasets() -> None:
    import datasets

    datasets.disable_progress_bars()


def _finish(dd, spec: Task):
    keep = list(spec.columns)
    for name in list(dd):
        extra = [c for c in dd[name].column_names if c not in keep]
        if extra:
            dd[name] = dd[name].remove_columns(extra)
    return dd


def describe(dd) -> str:
    """One line per split: size and, for classification, the class balance."""
    lines = []
    for name, ds in dd.items():
        line = f"{name:<10} {len(ds):>6} rows"
        feat = ds.features.get("label")
        if feat is not None and hasattr(feat, "names"):
            counts = {n: 0 for n in feat.names}
            for v in ds["label"]:
                counts[feat.names[v]] += 1
            line += "  " + ", ".join(f"{k}: {v}" for k, v in counts.items())
        lines.append(line)
    return "\n".join(lines)
