"""Colab readiness: every notebook's badge, install cell and parameters cell come from one source
(pyproject's Repository URL and requirements.txt), notebooks are committed without outputs, and the
install cell pins exactly requirements.txt (torch excepted) and does nothing outside Colab.

A deliberately broken copy of a real notebook must be caught by `notebooks.check`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gptforall_utils import data, notebooks

ROOT = notebooks.ROOT
ALL = notebooks.all_notebooks()
IDS = [p.relative_to(ROOT).as_posix() for p in ALL]


def _install_code(path: Path) -> str:
    nb = json.loads(path.read_text())
    (cell,) = [c for c in nb["cells"] if notebooks.INSTALL_TAG in c.get("metadata", {}).get("tags", [])]
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_notebooks_to_check():
    assert ALL, "no notebooks found in notebooks/ or notebooks/solutions/"


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_notebook_is_consistent_with_the_single_source(path):
    assert notebooks.check(path) == []


def _pip_calls(code: str, colab: bool) -> list[list[str]]:
    """Execute an install cell in a fresh interpreter with subprocess.run and os.chdir stubbed out;
    return the commands it would run. `colab` pretends google.colab is imported."""
    harness = (
        "import json, os, subprocess, sys, types\n"
        "calls = []\n"
        "subprocess.run = lambda cmd, **kw: calls.append(list(cmd))\n"
        "os.chdir = lambda path: calls.append(['chdir', path])\n"
        "os.path.isdir = lambda path: False\n"
        + ("sys.modules['google.colab'] = types.ModuleType('google.colab')\n" if colab else "")
        + f"exec(compile({code!r}, 'install-cell', 'exec'))\n"
        "print(json.dumps(calls))\n"
    )
    proc = subprocess.run([sys.executable, "-c", harness], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _requirements_pins() -> set[str]:
    pins = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pins.add(line)
    return pins


@pytest.mark.parametrize("path", list(dict.fromkeys(ALL[:1] + [p for p in ALL if "solutions" in p.parts][:1])),
                         ids=lambda p: p.stem)
def test_install_cell_does_nothing_outside_colab_and_pins_requirements_in_colab(path):
    code = _install_code(path)
    assert _pip_calls(code, colab=False) == [], "the install cell ran something outside Colab"
    calls = _pip_calls(code, colab=True)
    pip = [c for c in calls if c[1:4] == ["-m", "pip", "install"] and "--no-deps" not in c]
    assert len(pip) == 1, calls
    pinned = {a for a in pip[0] if "==" in a}
    expected = {p for p in _requirements_pins()
                if re.split(r"[=<>!~\[ ]", p, maxsplit=1)[0].lower() not in notebooks.NOT_ON_COLAB}
    assert pinned == expected
    assert not any(a.startswith("torch") for a in pip[0]), "Colab keeps its own CUDA torch"
    assert any(c[0] == "git" and notebooks.repo_url() in c for c in calls), calls


# ---------------------------------------------------------------- deliberately broken copies
@pytest.fixture
def sandbox(tmp_path):
    """A throwaway repository root with the same single source and one real notebook copied in."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copy(ROOT / "requirements.txt", tmp_path / "requirements.txt")
    (tmp_path / "notebooks").mkdir()
    original = ALL[0]
    copy = tmp_path / "notebooks" / original.name
    shutil.copy(original, copy)
    assert notebooks.check(copy, tmp_path) == []  # the copy itself is clean
    return tmp_path, copy


def _edit(path: Path, fn) -> None:
    nb = json.loads(path.read_text())
    fn(nb)
    path.write_text(json.dumps(nb, indent=1))


def _parameters_cell(nb: dict) -> dict:
    return next(c for c in nb["cells"] if notebooks.PARAMETERS_TAG in c.get("metadata", {}).get("tags", []))


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_wrong_badge_url_is_caught(sandbox):
    root, nb = sandbox

    def break_badge(d):
        d["cells"][0]["source"] = _source(d["cells"][0]).replace("/blob/main/", "/blob/old-branch/")

    _edit(nb, break_badge)
    assert any("badge" in p for p in notebooks.check(nb, root))


def test_badge_of_another_repository_is_caught(sandbox):
    root, nb = sandbox
    url = notebooks.repo_url(root).replace("https://github.com/", "")
    _edit(nb, lambda d: d["cells"][0].update(source=_source(d["cells"][0]).replace(url, "someone/fork")))
    assert any("badge" in p for p in notebooks.check(nb, root))


def test_outputs_are_caught(sandbox):
    root, nb = sandbox

    def add_output(d):
        code = next(c for c in d["cells"] if c["cell_type"] == "code")
        code["execution_count"] = 1
        code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]

    _edit(nb, add_output)
    assert any("outputs" in p for p in notebooks.check(nb, root))


def test_missing_parameters_cell_is_caught(sandbox):
    root, nb = sandbox

    def drop_tag(d):
        _parameters_cell(d)["metadata"]["tags"].remove(notebooks.PARAMETERS_TAG)

    _edit(nb, drop_tag)
    assert any("parameters" in p for p in notebooks.check(nb, root))


def test_changed_parameter_default_is_caught(sandbox):
    root, nb = sandbox

    def change(d):
        c = _parameters_cell(d)
        c["source"] = _source(c).replace("SEED = 0", "SEED = 42")

    _edit(nb, change)
    assert any("parameters" in p for p in notebooks.check(nb, root))


def test_install_cell_with_another_pin_is_caught(sandbox):
    root, nb = sandbox
    pin = next(p for p in notebooks.colab_pins(root) if "==" in p)
    name, version = pin.split("==")

    def repin(d):
        for c in d["cells"]:
            if notebooks.INSTALL_TAG in c.get("metadata", {}).get("tags", []):
                c["source"] = _source(c).replace(pin, f"{name}==0.0.1")

    _edit(nb, repin)
    assert any("install" in p for p in notebooks.check(nb, root))


def test_requirements_change_flags_unsynced_notebook_and_sync_repairs_it(sandbox):
    root, nb = sandbox
    req = root / "requirements.txt"
    req.write_text(req.read_text().replace("peft==", "peft==9.9.9\n# was peft=="))
    assert any("install" in p for p in notebooks.check(nb, root))
    assert notebooks.sync(nb, root) is True
    assert notebooks.check(nb, root) == []
    assert '"peft==9.9.9"' in _install_code(nb)


# ---------------------------------------------------------------- the task DATA feeds, named in every parameters cell
MAIN_LOAD = re.compile(r'data\.load\(\s*"(\w+)",\s*(?:source=)?(?:run\.data|DATA)\b')


@pytest.mark.parametrize("path", notebooks.all_notebooks(), ids=lambda p: p.stem)
def test_parameters_cell_names_the_task_data_feeds_and_the_notebook_loads_it(path):
    nb = json.loads(path.read_text())
    source = _source(_parameters_cell(nb))
    task = notebooks.data_task(path.stem)
    assert f"# feeds the {task} task:" in source.split("\n")[2], source
    assert task in data.tasks()
    code = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "code")
    loaded = set(MAIN_LOAD.findall(code))
    assert loaded <= {task}, (path.stem, loaded)  # DATA goes to that task only (others: data.other_source)
    if path.parent.name != "solutions":
        assert loaded == {task}, (path.stem, loaded)


def test_a_parameters_cell_naming_another_task_is_caught(sandbox):
    root, nb = sandbox

    def rename(d):
        c = _parameters_cell(d)
        c["source"] = _source(c).replace(f"feeds the {notebooks.data_task(nb.stem)} task", "feeds the medical task")

    _edit(nb, rename)
    assert any("parameters" in p for p in notebooks.check(nb, root))


def test_every_notebook_number_has_a_data_task():
    assert {p.stem[:2] for p in notebooks.all_notebooks()} == set(notebooks.DATA_TASKS)
    with pytest.raises(ValueError, match="no DATA task for '99'"):
        notebooks.parameters_source("99_new_topic")


# Loading a model before data.load(DATA) means a bad file is found only after minutes of model work: no notebook does.
MODEL_BEFORE_DATA: set[str] = set()


def test_notebooks_load_and_check_data_before_any_model():
    late = set()
    for path in notebooks.all_notebooks():
        nb = json.loads(path.read_text())
        code = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "code")
        data_at, model_at = MAIN_LOAD.search(code), re.search(r"models\.load_model\(", code)
        if data_at and model_at and model_at.start() < data_at.start():
            late.add(path.stem)
    assert late == MODEL_BEFORE_DATA, late
