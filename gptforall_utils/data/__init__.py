"""The dataset catalog: for each task a Hub source, an offline source and a local-file option.

Every source is normalised to one schema per task and returned as a `datasets.DatasetDict`
with a "test" split, and a "train" split for every task that is trained on (all but the
evaluation-only benchmark_questions). `DATA` in a notebook's parameters cell is one of
"auto" (Hub when it answers, else offline), "hub", "offline", or a local .jsonl/.json/.csv/.parquet file,
in the task's course schema or in its Hub dataset's own schema; `?drop_empty` after a source
drops rows with an empty required field instead of refusing them.

The Hub is reached through one function, `hub_dataset`: `datasets.load_dataset` normally, and a
local Hub mirror (a folder in the layout of data/README.md) when GPTFORALL_HUB_MIRROR names one.

    from gptforall_utils import data
    ds = data.load("sentiment", source=run.data, seed=run.seed)
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import env

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
SOURCES = ("auto", "hub", "offline")
FILE_TYPES = (".jsonl", ".json", ".csv", ".parquet")  # .parquet: the files the Hub itself stores
OPTIONS = ("drop_empty",)  # written after a source: DATA="alpaca_data.json?drop_empty"


@dataclass(frozen=True)
class Task:
    """A task's schema and its sources.

    columns: the schema every source is normalised to (name -> python type).
    labels: class names for classification tasks; a "label" column then holds an index into it,
    and local files may give either the index or the name.
    hub / offline: functions returning a DatasetDict in the schema.
    from_native: maps a Dataset in the task's Hub-native schema (or the course schema, unchanged) to the
    course schema, refusing ambiguous codes; used for the Hub and for local files alike.
    finish: applied to the loaded DatasetDict from every source (e.g. dialogsum groups references).
    eval_only: nothing is trained on; a local file without a `split` column is all test.
    group_by: a local file without a `split` column is split by this column's groups, not by rows.
    hub_datasets: the (Hub id, config) pairs `hub` reads, so a Hub mirror can be prepared for them.
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
    from_native: Callable[[object, str], object] | None = None
    finish: Callable[[object], object] | None = None
    eval_only: bool = False
    group_by: str | None = None  # a local file without a split column is split by this column's groups
    hub_datasets: tuple[tuple[str, str | None], ...] = ()
    label_aliases: dict[str, int] = field(default_factory=dict)  # extra label names, e.g. the Hub's "neg"/"pos"
    label_hint: str = ""  # appended to a refused label: which coding the `label` column uses
    key_columns: tuple[str, ...] = ()  # what makes two rows "the same example" (duplicates, train/test leaks);
    # default: the first text column
    check: Callable[[object, str], None] | None = None  # task-specific checks of a local file, after validate
    distinct_examples: bool = True  # a local file's exact duplicates and train/test repeats are dropped (counted)


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
def validate(dataset, task: Task, origin: str = "data", drop_empty: bool = False):
    """Check a Dataset against a task's schema; convert label names to indices. Returns the dataset.

    Raises ValueError naming the problem and what the task expects. A row with an empty required
    text field is refused (naming the rows and how to drop them) unless `drop_empty` is True, in
    which case such rows are dropped and counted in a printed line.
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
    empty_rows: dict[str, list[int]] = {}
    for column, kind in task.columns.items():
        if kind is not str:
            continue
        allow_empty = column in task.may_be_empty
        values = dataset[column]
        wrong = [i for i, v in enumerate(values) if v is not None and not isinstance(v, str)]
        if wrong:
            raise ValueError(f"{origin}: {_rows(wrong)} a non-text {column!r} (e.g. {values[wrong[0]]!r}); "
                             f"the {task.name} task needs text there.")
        if allow_empty:
            if any(v is None for v in values):
                dataset = dataset.map(lambda r, c=column: {c: r[c] or ""})
            continue
        empty = [i for i, v in enumerate(values) if v is None or not v.strip()]
        if empty:
            empty_rows[column] = empty
    if empty_rows:
        bad = sorted({i for rows in empty_rows.values() for i in rows})
        what = "; ".join(f"{_rows(rows)} an empty {column!r}" for column, rows in empty_rows.items())
        if not drop_empty:
            raise ValueError(
                f"{origin}: {what} (rows count from 0, in file order). Fill them in, or drop them: "
                f"DATA='<source>?drop_empty' (e.g. DATA='alpaca_data.json?drop_empty'), "
                f"or data.load(..., drop_empty=True)."
            )
        if len(bad) == len(dataset):
            raise ValueError(f"{origin}: every row has an empty required field ({what}); nothing is left to use.")
        drop = set(bad)
        dataset = dataset.select([i for i in range(len(dataset)) if i not in drop])
        print(f"{origin}: dropped {len(bad)} of {len(bad) + len(dataset)} rows, as asked (drop_empty): {what}.")
    if task.labels is not None and "label" in task.columns:
        dataset = _labels_to_index(dataset, task, origin)
    return dataset


def _rows(rows: list[int], show: int = 8) -> str:
    """'row 3 has' / 'rows 3, 9 have' / 'rows 3, 9, ... (40 rows) have', to start an error message's clause."""
    if len(rows) == 1:
        return f"row {rows[0]} has"
    head = ", ".join(str(i) for i in rows[:show])
    return f"rows {head}" + (f", ... ({len(rows)} rows)" if len(rows) > show else "") + " have"


def _labels_to_index(dataset, task: Task, origin: str):
    names = list(task.labels)
    lookup = {n.lower(): i for i, n in enumerate(names)}
    lookup.update({k.lower(): v for k, v in task.label_aliases.items()})

    def convert(value):
        code = int_code(value)
        if code is not None:
            if 0 <= code < len(names):
                return code
            raise ValueError
        if isinstance(value, str) and value.strip().lower() in lookup:
            return lookup[value.strip().lower()]
        raise ValueError

    values = dataset["label"]
    converted = []
    for i, v in enumerate(values):
        try:
            converted.append(convert(v))
        except ValueError:
            raise ValueError(
                f"{origin}: row {i} has label {v!r}; the {task.name} task's `label` is a 0-based index "
                f"0..{len(names) - 1} or one of the names {names}.{' ' + task.label_hint if task.label_hint else ''}"
            ) from None
    from datasets import ClassLabel

    dataset = dataset.remove_columns("label").add_column("label", converted)
    return dataset.cast_column("label", ClassLabel(names=names))


def int_code(value) -> int | None:
    """An integer class code from a file (int, integral float, or digits as text, as CSV gives); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


# ---------------------------------------------------------------- splitting and sampling
SPLIT_NAMES = ("train", "validation", "test")


def check_split_column(dataset, origin: str = "data", eval_only: bool = False) -> None:
    """A `split` column's values: every row needs one of SPLIT_NAMES, spelled exactly (a typo would send rows to a
    split nothing reads)."""
    import difflib

    values = dataset["split"]
    missing = [i for i, v in enumerate(values) if v is None or (isinstance(v, str) and not v.strip())]
    if missing:
        raise ValueError(f"{origin}: {_rows(missing)} no `split` value (rows count from 0). Give every row one of "
                         f"{', '.join(SPLIT_NAMES)}, or drop the `split` column to split with the seed.")
    unknown: dict[str, list[int]] = {}
    for i, v in enumerate(values):
        if v not in SPLIT_NAMES:
            unknown.setdefault(str(v), []).append(i)
    if unknown:
        parts = []
        for value, rows in unknown.items():
            near = difflib.get_close_matches(value.strip().lower(), SPLIT_NAMES, n=1, cutoff=0.5)
            parts.append(f"{_rows(rows)} split {value!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
        need = "'test' rows" if eval_only else "both 'train' and 'test' rows"
        raise ValueError(f"{origin}: {'; '.join(parts)}. No notebook reads such a split: use exactly "
                         f"{', '.join(SPLIT_NAMES)} (lower case); the task needs {need}.")


def split(dataset, test_size: float | int, seed: int, eval_only: bool = False, group_by: str | None = None):
    """Deterministic train/test split for a seed (a `split` column, when present, wins).

    For an evaluation-only task (`eval_only`), a dataset without a `split` column is all test, and a
    `split` column needs only "test" rows. With `group_by`, rows with the same value in that column
    (e.g. a dialogue repeated once per reference summary) land on the same side; test_size then
    counts groups.
    """
    from datasets import DatasetDict

    if "split" in dataset.column_names:
        check_split_column(dataset, eval_only=eval_only)
        parts = {}
        for name in sorted(set(dataset["split"])):
            parts[name] = dataset.filter(lambda r, n=name: r["split"] == n).remove_columns("split")
        if "test" in parts and ("train" in parts or eval_only):
            return DatasetDict(parts)
        need = "'test' rows" if eval_only else "both 'train' and 'test' rows"
        raise ValueError(f"A 'split' column must contain {need}; found {sorted(parts)}.")
    if eval_only:
        return DatasetDict({"test": dataset})
    if len(dataset) < 2:
        raise ValueError(f"Need at least 2 rows to split into train and test, got {len(dataset)}.")
    if group_by is not None:
        from datasets import Dataset

        keys = [str(v).strip() for v in dataset[group_by]]
        groups = list(dict.fromkeys(keys))
        if len(groups) < 2:
            raise ValueError(f"Need at least 2 distinct {group_by!r} values to split, got {len(groups)}.")
        test_keys = set(Dataset.from_dict({"key": groups}).train_test_split(
            test_size=test_size, seed=seed, shuffle=True)["test"]["key"])
        rows = {side: [i for i, k in enumerate(keys) if (k in test_keys) == (side == "test")] for side in ("train", "test")}
        return DatasetDict({side: dataset.select(idx) for side, idx in rows.items()})
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


# ---------------------------------------------------------------- the Hub, or a local mirror of it
def mirror_name(hub_id: str, config: str | None = None) -> str:
    """A Hub id's folder in a Hub mirror: "/" becomes "__", and a config is appended as "__<config>"."""
    return hub_id.replace("/", "__") + (f"__{config}" if config else "")


def hub_dataset(hub_id: str, config: str | None = None, split: str | None = None):
    """What `datasets.load_dataset(hub_id, config, split=split)` returns, from the Hub mirror when one is set.

    With GPTFORALL_HUB_MIRROR set, the dataset is read from `<mirror>/<mirror_name(hub_id, config)>/`
    (schema.json and one <split>.jsonl per split; see data/README.md): a DatasetDict in the Hub's split
    order with the Hub's features, or one Dataset for `split=`. A dataset missing from the mirror is a
    FileNotFoundError naming the folder expected; the real Hub is never asked instead.
    """
    mirror = env.hub_mirror()
    if mirror is None:
        from datasets import load_dataset

        return load_dataset(hub_id, config, split=split)
    folder = mirror / mirror_name(hub_id, config)
    if not (folder / "schema.json").is_file():
        raise FileNotFoundError(
            f"The Hub mirror {mirror} ({env.HUB_MIRROR_ENV}) has no {hub_id}"
            f"{f' (config {config})' if config else ''}: expected the folder {folder} with schema.json and "
            f"one <split>.jsonl per split (layout: data/README.md). Add it with scripts/prepare_hub_mirror.py, "
            f"or unset {env.HUB_MIRROR_ENV}."
        )
    return read_mirror_folder(folder, split)


def read_mirror_folder(folder: str | Path, split: str | None = None):
    """One dataset folder of a Hub mirror as a DatasetDict (splits in schema.json's order), or one split."""
    from datasets import Dataset, DatasetDict

    folder = Path(folder)
    schema = json.loads((folder / "schema.json").read_text(encoding="utf-8"))
    features = features_from_schema(schema["features"])
    order = list(schema.get("column_order") or features)
    names = list(schema["splits"])
    if split is not None and split not in names:
        raise ValueError(f'Unknown split "{split}". Should be one of {names}.'
                         + (" Slices such as 'train[:100]' are not served by a mirror." if "[" in split else ""))
    parts = {}
    for name in names if split is None else [split]:
        path = folder / f"{name}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{folder}/schema.json lists the split {name!r} but {path} is missing.")
        rows = read_jsonl(path)
        columns = {c: [r.get(c) for r in rows] for c in features}
        ds = Dataset.from_dict(columns, features=features, split=name)
        parts[name] = ds.select_columns(order) if ds.column_names != order else ds
    return parts[split] if split is not None else DatasetDict(parts)


def features_from_schema(features: dict[str, str]):
    """datasets.Features from schema.json's strings (datasets' own reprs, e.g. "ClassLabel(names=['neg', 'pos'])").

    The strings are parsed, never evaluated: only feature constructors, literals and lists are accepted.
    """
    import datasets

    allowed = {name: getattr(datasets, name) for name in
               ("Value", "ClassLabel", "List", "LargeList", "Sequence", "Translation", "TranslationVariableLanguages")
               if hasattr(datasets, name)}

    def build(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [build(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {build(k): build(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in allowed:
            return allowed[node.func.id](*[build(a) for a in node.args],
                                         **{k.arg: build(k.value) for k in node.keywords})
        raise ValueError(f"unsupported feature expression: {ast.unparse(node)}")

    out = {}
    for column, text in features.items():
        try:
            out[column] = build(ast.parse(text, mode="eval").body)
        except (SyntaxError, ValueError, TypeError) as e:
            raise ValueError(f"schema.json: the feature of {column!r} ({text!r}) cannot be read: {e}") from None
    return datasets.Features(out)


def save_to_mirror(dataset, mirror: str | Path, hub_id: str, config: str | None = None, *,
                   max_rows: int | None = None, licence: str | None = None, source: str | None = None) -> Path:
    """Write a DatasetDict (what `load_dataset(hub_id, config)` returned) into a Hub mirror folder.

    Writes `<mirror>/<mirror_name(hub_id, config)>/` with one <split>.jsonl per split (ASCII-escaped
    JSON, one row per line) and schema.json (splits with their full sizes, features, column order), the
    layout `hub_dataset` reads. `max_rows` keeps the first rows of each split (for small test fixtures).
    """
    from datasets import DatasetDict

    if not isinstance(dataset, DatasetDict):
        raise ValueError("save_to_mirror takes a DatasetDict (load_dataset without split=), so every split is kept.")
    folder = Path(mirror) / mirror_name(hub_id, config)
    folder.mkdir(parents=True, exist_ok=True)
    for name, ds in dataset.items():
        part = ds.select(range(min(max_rows, len(ds)))) if max_rows is not None else ds
        with open(folder / f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for batch in part.iter(batch_size=1000):
                for i in range(len(next(iter(batch.values()), []))):
                    f.write(json.dumps({c: batch[c][i] for c in part.column_names}, ensure_ascii=True) + "\n")
    first = next(iter(dataset.values()))
    schema = {
        "hub_id": hub_id,
        "config": config,
        "splits": {name: len(ds) for name, ds in dataset.items()},
        "features": {c: repr(f) for c, f in first.features.items()},
        "column_order": first.column_names,
        "licence": licence,
        "sample_source": source or f"datasets.load_dataset({hub_id!r}, {config!r})"
                                   + (f", first {max_rows} rows of each split" if max_rows is not None else ""),
    }
    (folder / "schema.json").write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    return folder


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


def read_jsonl(path: str | Path, text: str | None = None) -> list[dict]:
    """JSON Lines: one object per line, lines split on "\\n" only (CRLF accepted).

    Not str.splitlines(): that also breaks at U+0085, U+2028 and U+2029, which real text (e.g. Rotten
    Tomatoes decoded as latin-1) carries inside JSON strings. `text`: the file's decoded text, if already read.
    """
    path = Path(path)
    if text is None:
        text = path.read_text(encoding="utf-8-sig")
    rows = []
    for n, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            hint = ""
            if n == 1 and line.lstrip().startswith("["):
                hint = " It starts a JSON array: give such a file the .json suffix."
            raise ValueError(f"{path}:{n} is not valid JSON ({e.msg}, column {e.colno}). Each line of a .jsonl "
                             f"file must be one JSON object, e.g. {{\"text\": \"...\", \"label\": 1}}.{hint}") from None
    return rows


def _kind(value) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _from_rows(rows: list, origin: str = "data"):
    """A Dataset from a list of dicts; columns are every key seen (first-appearance order), None where absent.

    Refuses, naming the file, the column and the rows: a record that is not an object, and a column that mixes
    kinds of value (e.g. label 1 in one row and "positive" in another, or a number where text belongs).
    """
    from datasets import Dataset

    columns: dict[str, None] = {}
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise ValueError(f"{origin}: record {i} is {_kind(r)} ({str(r)[:60]!r}), not a JSON object; every "
                             f"record must be an object with the task's columns, e.g. {{\"text\": \"...\", \"label\": 1}}.")
        columns.update(dict.fromkeys(r))
    table = {c: [r.get(c) for r in rows] for c in columns}
    for c, values in table.items():
        first: dict[str, int] = {}
        for i, v in enumerate(values):
            if v is not None:
                first.setdefault(_kind(v), i)
        if len(first) > 1:
            (k1, i1), (k2, i2) = list(first.items())[:2]
            raise ValueError(
                f"{origin}: column {c!r} mixes {k1} and {k2}: row {i1} has {values[i1]!r}, row {i2} has "
                f"{values[i2]!r} (rows count from 0). Use one kind of value in a column"
                + (" (all label codes, or all label names)." if c == "label" else
                   " (text columns hold text: write numbers as \"42\").") )
    try:
        return Dataset.from_dict(table)
    except Exception as e:  # noqa: BLE001 - pyarrow's many errors: name the file instead of a library traceback
        raise ValueError(f"{origin}: the records cannot be read as one table ({type(e).__name__}: "
                         f"{str(e)[:200]}); check that each column holds one kind of value.") from None


def _decode(path: Path, raw: bytes) -> str:
    """A file's text: UTF-8 (with or without BOM); UTF-16 (by its BOM); else cp1252 or latin-1, saying so."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
        print(f"{path}: read as UTF-16 (the file starts with its byte-order mark; Excel's 'Unicode text' "
              f"export); {len(text)} characters.")
        return text
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        bad = e.start
    if raw.count(b"\x00") > len(raw) // 4:
        for enc in ("utf-16-le", "utf-16-be"):
            try:
                text = raw.decode(enc)
            except UnicodeDecodeError:
                continue
            print(f"{path}: read as {enc.upper()} (no byte-order mark, half of its bytes are zero); "
                  f"{len(text)} characters.")
            return text
    for enc, name in (("cp1252", "cp1252 (Windows/Excel 'ANSI')"), ("latin-1", "latin-1 (ISO-8859-1)")):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        non_ascii = sorted({ch for ch in text if ord(ch) > 127})
        count = sum(1 for ch in text if ord(ch) > 127)
        print(f"{path}: not UTF-8 (byte {bad} is 0x{raw[bad]:02x}); read as {name}: {count} non-ASCII "
              f"character(s), e.g. {''.join(non_ascii[:8])!r}. If they look wrong, save the file as UTF-8.")
        return text
    raise ValueError(f"{path}: not UTF-8 (byte {bad}); save it as UTF-8.")  # latin-1 decodes anything: unreachable


def _read_csv(path: Path, text: str):
    import csv
    import io

    csv.field_size_limit(2**31 - 1)  # real fields (a whole abstract, a dialogue) may exceed csv's 128K default
    header_line = text.split("\n", 1)[0]
    delimiter = ","
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    if counts[","] == 0 and max(counts[";"], counts["\t"]) > 0:
        delimiter = ";" if counts[";"] >= counts["\t"] else "\t"
        print(f"{path}: read as CSV separated by {delimiter!r} (its header has no ','; a spreadsheet export).")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[dict] = []
    header: list[str] | None = None
    line = 0
    try:
        for record in reader:
            start, line = line + 1, reader.line_num
            if header is None:
                header = [h.strip() for h in record]
                seen: dict[str, int] = {}
                for j, h in enumerate(header):
                    if h and h in seen:
                        raise ValueError(
                            f"{path}: the header names column {h!r} twice (columns {seen[h] + 1} and {j + 1}); "
                            f"a table cannot hold both, and keeping either would silently lose the other. "
                            f"Rename or delete one of them.")
                    seen[h] = j
                unnamed = [j for j, h in enumerate(header) if not h]
                if unnamed:
                    print(f"{path}: {len(unnamed)} column(s) without a name in the header (e.g. pandas' index, "
                          f"written by to_csv without index=False) ignored.")
                continue
            if not any(field.strip() for field in record):
                continue
            if len(record) > len(header):
                raise ValueError(
                    f"{path}: the record on line {start} has {len(record)} fields but the header has {len(header)} "
                    f"({', '.join(header)}). A {delimiter!r} inside a text that is not quoted? Quote such fields "
                    f"(\"a, b\"), as spreadsheets and pandas' to_csv do.")
            if len(record) < len(header):
                multi = [f for f in record if "\n" in f]
                if multi:
                    raise ValueError(
                        f"{path}: the record starting on line {start} runs to line {line} and has {len(record)} of "
                        f"{len(header)} fields: a quote (\") opened on line {start} is not closed, so the lines "
                        f"after it were read as one text. Close the quote, or write a quote inside a quoted "
                        f"field as two (\"\").")
                raise ValueError(
                    f"{path}: the record on line {start} has {len(record)} fields but the header has "
                    f"{len(header)} ({', '.join(header)}); missing: {', '.join(header[len(record):])}. "
                    f"Fill them in (an empty field is still written with its separator).")
            rows.append({h: v for h, v in zip(header, record) if h})
    except csv.Error as e:
        if "end of data" in str(e) or "EOF" in str(e):
            raise ValueError(
                f"{path}: the record starting on line {line + 1} runs to line {reader.line_num} (the end of the file): "
                f"a quote (\") opened there is not closed, so everything after it was read as one text. Close the "
                f"quote, or write a quote inside a quoted field as two (\"\").") from None
        raise ValueError(f"{path}: line {reader.line_num} is not valid CSV ({e}); a quote (\") inside a field "
                         f"must be written as two (\"\") and the field quoted.") from None
    if header is None:
        return _from_rows([], str(path))
    return _from_rows(rows, str(path)) if rows else _empty_with_columns([h for h in header if h])


def _empty_with_columns(columns: list[str]):
    from datasets import Dataset

    return Dataset.from_dict({c: [] for c in columns})


def _read_json(path: Path, text: str):
    """A .json or .jsonl file: JSON Lines, one JSON array of records, or one of pandas' to_json layouts."""
    stripped = text.lstrip()
    whole = None
    if stripped.startswith(("[", "{")):
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None  # JSON Lines (several objects), read line by line below
    if isinstance(whole, list):
        if path.suffix.lower() == ".jsonl":
            print(f"{path}: holds one JSON array, not JSON Lines; read as the array's {len(whole)} records.")
        return _from_rows(whole, str(path))
    if isinstance(whole, dict):
        layout = _pandas_layout(whole)
        if layout is not None:
            name, records = layout
            print(f"{path}: read as pandas' to_json(orient={name!r}) layout: {len(records)} records.")
            return _from_rows(records, str(path))
        return _from_rows([whole], str(path))
    return _from_rows(read_jsonl(path, text), str(path))


def _pandas_layout(obj: dict) -> tuple[str, list[dict]] | None:
    """pandas' DataFrame.to_json layouts other than records/lines, as a list of records; None if not one."""
    if set(obj) >= {"columns", "data"} and isinstance(obj["data"], list):  # orient="split"
        return "split", [dict(zip(obj["columns"], row)) for row in obj["data"]]
    if set(obj) >= {"schema", "data"} and isinstance(obj["data"], list):  # orient="table"
        return "table", [{k: v for k, v in r.items() if k != "index"} for r in obj["data"] if isinstance(r, dict)]
    if obj and all(isinstance(v, dict) for v in obj.values()):
        keys = list(obj)
        if all(str(k).lstrip("-").isdigit() for k in keys):  # orient="index": {row: {column: value}}
            return "index", [obj[k] for k in keys]
        index = list(dict.fromkeys(i for v in obj.values() for i in v))  # orient="columns": {column: {row: value}}
        return "columns", [{c: obj[c].get(i) for c in keys} for i in index]
    return None


def read_local(file: str | Path):
    """Read a .jsonl/.json/.csv/.parquet file into a Dataset (no validation). Errors name the file.

    Prints what it chose for the user: an encoding other than UTF-8 (cp1252, latin-1, UTF-16), a CSV separator
    other than ',' (';' or tab, as spreadsheets export), a JSON array in a .jsonl file, a pandas to_json layout.
    """
    path = Path(file).expanduser()
    if path.is_dir():
        files = sorted(p.name for p in path.iterdir() if p.suffix.lower() in FILE_TYPES)[:5]
        raise ValueError(f"DATA {path} is a folder, not a file; give one {'/'.join(FILE_TYPES)} file"
                         + (f" in it, e.g. {path / files[0]} (it has: {', '.join(files)})." if files else "."))
    if not path.is_file():
        raise FileNotFoundError(f"DATA file {path} does not exist (relative paths start at {Path.cwd()}).")
    suffix = path.suffix.lower()
    if suffix not in FILE_TYPES:
        raise ValueError(f"DATA file {path} must be {', '.join(FILE_TYPES)}"
                         + (" (save a spreadsheet as CSV UTF-8)." if suffix in (".xlsx", ".xls", ".ods") else "."))
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            records = pq.read_table(path).to_pylist()
        except Exception as e:  # noqa: BLE001 - a corrupt or truncated file: say which, not pyarrow's traceback
            raise ValueError(f"{path} is not a readable Parquet file ({type(e).__name__}: {str(e)[:160]}); "
                             f"download or export it again (ds.to_parquet / df.to_parquet), or give .jsonl/.csv.") from None
        return _from_rows(records, str(path))
    text = _decode(path, path.read_bytes())
    if suffix == ".csv":
        return _read_csv(path, text)
    return _read_json(path, text)


def parse_source(source: str) -> tuple[str, set[str]]:
    """Split a DATA value into the source and its options: "alpaca.json?drop_empty" -> ("alpaca.json", {"drop_empty"}).

    A file that exists under the whole name (a '?' in the file name) is that file, without options."""
    if "?" in source and Path(source).expanduser().is_file():
        return source, set()
    base, _, rest = source.partition("?")
    options = {o.strip() for o in rest.split("&") if o.strip()}
    unknown = options - set(OPTIONS)
    if unknown:
        raise ValueError(f"DATA={source!r}: unknown option(s) {sorted(unknown)} after '?'; options: "
                         f"{', '.join(OPTIONS)}. No file is named {source!r}; if '?' belongs to the file name, "
                         f"check the path or rename the file.")
    return base, options


def other_source(source: str) -> str:
    """The source for a task that is not the notebook's main task.

    `DATA` feeds a notebook's main task; the other tasks it loads follow "auto"/"hub"/"offline"
    (a local file holds one task's schema, so it cannot serve them): a file path gives "auto".
    Options such as ?drop_empty belong to the main task's data and are not passed on.
    """
    base = source.partition("?")[0]
    return base if base in SOURCES else "auto"


def load(task: str, source: str = "auto", seed: int = 0, drop_empty: bool = False):
    """Load a task's data as a DatasetDict in the task's schema.

    source: "auto" (Hub when it answers, else offline), "hub", "offline", or a local file path, in
    the task's course schema or its Hub dataset's schema; "?drop_empty" may follow any of them.
    drop_empty: drop rows with an empty required field (else they are refused, naming the rows).
    """
    spec = get_task(task)
    _quiet_datasets()
    source, options = parse_source(source)
    drop_empty = drop_empty or "drop_empty" in options
    if source not in SOURCES:
        path = Path(source).expanduser()
        if path.suffix.lower() not in FILE_TYPES and not path.exists():
            raise ValueError(f"DATA={source!r}: use 'auto', 'hub', 'offline' or a {'/'.join(FILE_TYPES)} file.")
        return _load_file(path, spec, seed, drop_empty)
    if source == "auto":
        source = "hub" if env.hub_available() else "offline"
    if source == "hub":
        if not env.hub_available():
            raise FileNotFoundError(
                f"DATA='hub' but the Hugging Face Hub is not reachable and no Hub mirror is set "
                f"({env.HUB_MIRROR_ENV}); use DATA='offline' ({spec.offline_source})."
            )
        dd = spec.hub()
    else:
        dd = spec.offline(seed)
    for name in list(dd):
        dd[name] = validate(dd[name], spec, origin=f"{task} ({source}, {name} split)", drop_empty=drop_empty)
    return _finish(dd, spec)


def _load_file(path: Path, spec: Task, seed: int, drop_empty: bool):
    """A local DATA file, checked before any model work: every error is a ValueError (or FileNotFoundError) that
    names the file, and every choice made for the user is printed with its count."""
    origin = str(path)
    try:
        ds = read_local(path)
        if "split" in ds.column_names:
            check_split_column(ds, origin, spec.eval_only)
        if "label" in ds.column_names and spec.labels is not None:
            check_label_codes(ds["label"], spec, origin)
        if spec.from_native is not None:
            ds = spec.from_native(ds, origin)
        ds = validate(ds, spec, origin=origin, drop_empty=drop_empty)
        if spec.check is not None:
            spec.check(ds, origin)
        if spec.distinct_examples:
            ds = drop_duplicates(ds, spec, origin)
        dd = split(ds, spec.test_size, seed, eval_only=spec.eval_only, group_by=spec.group_by)
        if spec.distinct_examples:
            dd = drop_leaks(dd, spec, origin)
        if spec.labels is not None and "train" in dd:
            classes = sorted(set(dd["train"]["label"]))
            if len(classes) < 2:
                names = [spec.labels[c] for c in classes]
                raise ValueError(f"{origin}: the train split holds one class only ({names}); a classifier needs "
                                 f"examples of at least 2 of {list(spec.labels)}. Add rows of the other classes.")
        return _finish(dd, spec)
    except (ValueError, FileNotFoundError) as e:
        if origin in str(e):
            raise
        raise type(e)(f"{origin}: {e}") from None
    except Exception as e:  # noqa: BLE001 - anything unforeseen still names the file and what the task expects
        expected = ", ".join(f"{c} ({t.__name__})" for c, t in spec.columns.items())
        raise ValueError(f"{origin}: cannot be read as {spec.name} data ({type(e).__name__}: {str(e)[:200]}). "
                         f"The task expects the columns {expected}; the layouts each task accepts are in "
                         f"data/README.md.") from e


def check_label_codes(values, spec: Task, origin: str) -> None:
    """Integer label codes that never use 0 are ambiguous: a 0-based file lacking its first class, or a 1-based
    file (whose top code may be absent too). Refused, spelling out the coding; names are never ambiguous."""
    codes = [int_code(v) for v in values if v is not None]
    if not codes or any(c is None for c in codes) or len(set(codes)) < 2:
        return  # names (or a mix validate refuses), not codes; one class only is refused after the split
    if min(codes) >= 1 and max(codes) <= len(spec.labels):
        coding = ", ".join(f"{i} {n}" for i, n in enumerate(spec.labels))
        one = ", ".join(f"{i} {n}" for i, n in enumerate(spec.labels, 1))
        raise ValueError(
            f"{origin}: `label` holds the codes {sorted(set(codes))} and never 0, so the coding is ambiguous: the "
            f"course's `label` is 0-based ({coding}); codes counted from 1 ({one}) would all be read one class too "
            f"high. Write the class names instead of codes (e.g. {spec.labels[0]!r}), or, if the codes are "
            f"0-based, include the rows of class 0.{' ' + spec.label_hint if spec.label_hint else ''}")


def unique_ids(dataset, column: str, origin: str) -> None:
    """A benchmark's ids must be unique: a repeated id would score (and report) one question twice."""
    first: dict[str, int] = {}
    for i, v in enumerate(dataset[column]):
        key = str(v).strip()
        if key in first:
            raise ValueError(f"{origin}: rows {first[key]} and {i} have the same {column} {v!r} (rows count from 0); "
                             f"every question needs its own {column}. Renumber or delete the repeat.")
        first[key] = i


def key_columns(spec: Task) -> list[str]:
    return list(spec.key_columns) or [next(c for c, t in spec.columns.items() if t is str)]


def _key(row: dict, cols: list[str]) -> tuple:
    return tuple(" ".join(str(row[c]).split()) if isinstance(row[c], str) else json.dumps(row[c], sort_keys=True,
                 default=str) for c in cols)


def drop_duplicates(dataset, spec: Task, origin: str):
    """Rows that repeat an earlier row exactly (every column of the task, and the split) are dropped, and counted;
    rows with the same input but a different label are kept and counted (the data disagree with themselves)."""
    cols = [c for c in spec.columns if c in dataset.column_names] + (
        ["split"] if "split" in dataset.column_names else [])
    seen: dict[tuple, int] = {}
    dupes: list[int] = []
    for i, row in enumerate(dataset):
        k = _key(row, cols)
        if k in seen:
            dupes.append(i)
        else:
            seen[k] = i
    if dupes:
        first = dataset[dupes[0]]
        print(f"{origin}: dropped {len(dupes)} exact duplicate row(s) of {len(dataset)} ({_rows(dupes)} the "
              f"same values as an earlier row, e.g. {_short(first, key_columns(spec))}); each example is kept once.")
        drop = set(dupes)
        dataset = dataset.select([i for i in range(len(dataset)) if i not in drop])
    if "label" in spec.columns:
        keys = key_columns(spec)
        labels: dict[tuple, set] = {}
        for row in dataset:
            labels.setdefault(_key(row, keys), set()).add(row["label"])
        conflicting = sum(1 for v in labels.values() if len(v) > 1)
        if conflicting:
            print(f"{origin}: {conflicting} text(s) occur with different labels; kept as given (no label is right "
                  f"for both copies: check them).")
    return dataset


def _short(row: dict, cols: list[str]) -> str:
    return repr(" / ".join(str(row[c]) for c in cols)[:60])


def drop_leaks(dd, spec: Task, origin: str):
    """Training rows whose input also occurs in the test split (or validation) would leak: dropped from train,
    counted, so the held-out figures measure unseen examples."""
    if "train" not in dd:
        return dd
    keys = key_columns(spec)
    held = {_key(r, keys) for name in dd if name != "train" for r in dd[name]}
    leaks = [i for i, r in enumerate(dd["train"]) if _key(r, keys) in held]
    if leaks:
        if len(leaks) == len(dd["train"]):
            raise ValueError(f"{origin}: every train row also occurs in the held-out split(s) (same "
                             f"{', '.join(keys)}); nothing unseen is left to test on. Give different rows.")
        example = _short(dd["train"][leaks[0]], keys)
        print(f"{origin}: dropped {len(leaks)} train row(s) whose {', '.join(keys)} also occur(s) in a held-out "
              f"split (e.g. {example}), so the test figures measure unseen examples.")
        drop = set(leaks)
        dd["train"] = dd["train"].select([i for i in range(len(dd["train"])) if i not in drop])
    return dd


def _quiet_datasets() -> None:
    import datasets

    datasets.disable_progress_bars()


def _finish(dd, spec: Task):
    keep = list(spec.columns)
    for name in list(dd):
        extra = [c for c in dd[name].column_names if c not in keep]
        if extra:
            dd[name] = dd[name].remove_columns(extra)
    return spec.finish(dd) if spec.finish is not None else dd


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
