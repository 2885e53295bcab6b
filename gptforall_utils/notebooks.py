"""One source of truth for every notebook's Colab badge, install cell and parameters cell.

The repository URL comes from pyproject.toml ([project.urls] Repository) and the pins from
requirements.txt (torch excepted: Colab keeps its own CUDA build). `sync` rewrites the badge and
install cell and `parameters` cell of every notebook (the DATA line names the task DATA feeds: DATA_TASKS);
`check` lists drift, outputs, or a missing `parameters` cell.

    python -m gptforall_utils.notebooks sync
    python -m gptforall_utils.notebooks check
"""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
INSTALL_TAG = "colab-install"
PARAMETERS_TAG = "parameters"
DEV_PACKAGES = {"pytest", "pytest-xdist", "hypothesis", "ruff", "jupyter", "ipykernel", "papermill"}
# Colab keeps its own torch (CUDA build) and its own ipywidgets (7.x: its front end does not render 8.x widgets).
NOT_ON_COLAB = {"torch", "ipywidgets"} | DEV_PACKAGES
PARAMETERS_SOURCE = '''PROFILE = "auto"      # "smoke" (CI, seconds) | "cpu" (minutes on a laptop) | "gpu" (Colab T4 and up)
MODEL = "auto"        # "auto", a Hugging Face Hub id, or a local path
DATA = "auto"         # feeds the {task} task: "auto" | "hub" | "offline" | a .jsonl/.json/.csv/.parquet file (data/README.md)
OUTPUT_DIR = "outputs"
SEED = 0'''
# The task each notebook's DATA feeds (its main task; data/README.md's "DATA feeds" table). Solutions share theirs.
DATA_TASKS = {"00": "sentiment", "01": "lm_text", "02": "lm_text", "03": "sentiment", "04": "sentiment",
              "05": "dialogsum", "06": "instructions", "07": "medical", "08": "multiple_choice", "09": "instructions",
              "10": "preferences", "11": "sentiment"}


def data_task(stem: str) -> str:
    """The task a notebook's DATA feeds, from its number ("04_sentiment_classification" -> "sentiment")."""
    number = stem[:2]
    if number not in DATA_TASKS:
        raise ValueError(f"notebook {stem!r}: no DATA task for {number!r} in notebooks.DATA_TASKS; add it there")
    return DATA_TASKS[number]


def parameters_source(stem: str) -> str:
    """The parameters cell of a notebook: the contract, with the DATA line naming the task DATA feeds."""
    return PARAMETERS_SOURCE.format(task=data_task(stem))
BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def repo_url(root: Path = ROOT) -> str:
    """The repository URL, from pyproject.toml."""
    data = tomllib.loads((root / "pyproject.toml").read_text())
    return data["project"]["urls"]["Repository"].rstrip("/")


def colab_pins(root: Path = ROOT) -> list[str]:
    """requirements.txt pins that Colab needs (no torch, no development tools)."""
    pins = []
    for line in (root / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = re.split(r"[=<>!~\[ ]", line, maxsplit=1)[0].lower()
        if name not in NOT_ON_COLAB:
            pins.append(line)
    return pins


def badge(stem: str, root: Path = ROOT, folder: str = "notebooks") -> str:
    url = repo_url(root).replace("https://github.com/", "https://colab.research.google.com/github/")
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({url}/blob/main/{folder}/{stem}.ipynb)")


def install_source(root: Path = ROOT) -> str:
    url = repo_url(root)
    checkout = "/content/" + url.rsplit("/", 1)[-1]
    pins = ", ".join(f'"{p}"' for p in colab_pins(root))
    return f'''# Colab only: install the pinned course packages and the helper package; does nothing elsewhere.
# Generated from requirements.txt by `python -m gptforall_utils.notebooks sync`: edit the pins there.
import os, subprocess, sys
if "google.colab" in sys.modules:
    REPO, CHECKOUT = "{url}", "{checkout}"
    if not os.path.isdir(CHECKOUT):
        subprocess.run(["git", "clone", "--depth", "1", REPO, CHECKOUT], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", {pins}], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", CHECKOUT], check=True)
    sys.path.insert(0, CHECKOUT)
    os.chdir(os.path.join(CHECKOUT, "notebooks"))'''


def _cell(kind: str, source: str, tags: list[str] | None = None) -> dict:
    cell = {"cell_type": kind, "metadata": {"tags": tags} if tags else {}, "source": source.strip("\n")}
    if kind == "code":
        cell["execution_count"] = None
        cell["outputs"] = []
    return cell


def build(stem: str, title: str, learn: list[str], times: dict[str, str], cells: list[tuple[str, str]],
          folder: str = "notebooks", root: Path = ROOT) -> dict:
    """A notebook in the course's contract: header (title, badge, what you will learn, run times),
    Colab install cell, `parameters` cell, then `cells` as ("md" | "code", source) pairs."""
    header = [f"# {title}", "", badge(stem, root, folder), "", "**What you will learn**", ""]
    header += [f"- {item}" for item in learn]
    header += ["", "**Expected run time:** " + " · ".join(f"{k}: {v}" for k, v in times.items())]
    nb_cells = [
        _cell("markdown", "\n".join(header)),
        _cell("code", install_source(root), [INSTALL_TAG]),
        _cell("code", parameters_source(stem), [PARAMETERS_TAG]),
    ]
    for kind, source in cells:
        nb_cells.append(_cell("markdown" if kind == "md" else "code", source))
    return {
        "cells": nb_cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "colab": {"provenance": []},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write(nb: dict, path: Path) -> Path:
    """Write a notebook with stable formatting and cell ids (diff-friendly)."""
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"{path.stem[:40]}-{i:02d}".replace("_", "-")
        if isinstance(cell["source"], str):
            lines = cell["source"].split("\n")
            cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path


def _text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def all_notebooks(root: Path = ROOT) -> list[Path]:
    nb_dir = root / "notebooks"
    return sorted(nb_dir.glob("[0-9][0-9]_*.ipynb")) + sorted((nb_dir / "solutions").glob("[0-9][0-9]_*.ipynb"))


def check(path: Path, root: Path = ROOT) -> list[str]:
    """Problems with one notebook: outputs, missing/duplicate parameters cell, badge or install drift."""
    problems = []
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    folder = path.parent.relative_to(root).as_posix()
    if any(c.get("outputs") or c.get("execution_count") for c in cells if c["cell_type"] == "code"):
        problems.append("committed with outputs (clear them)")
    params = [c for c in cells if PARAMETERS_TAG in _tags(c)]
    if len(params) != 1:
        problems.append(f"has {len(params)} cells tagged 'parameters' (need exactly one)")
    elif _text(params[0]).strip() != parameters_source(path.stem):
        problems.append("parameters cell differs from the contract (names and defaults in docs/DESIGN.md; "
                        "run notebooks sync)")
    first = cells[0] if cells else {}
    if first.get("cell_type") != "markdown" or badge(path.stem, root, folder) not in _text(first):
        problems.append("Colab badge missing or pointing elsewhere (run notebooks sync)")
    installs = [c for c in cells if INSTALL_TAG in _tags(c)]
    if len(installs) != 1 or _text(installs[0]).strip() != install_source(root).strip():
        problems.append("install cell missing or drifted from requirements.txt (run notebooks sync)")
    return problems


def sync(path: Path, root: Path = ROOT) -> bool:
    """Rewrite the badge, install cell and parameters cell from the single source; True when the file changed."""
    before = path.read_text()
    nb = json.loads(before)
    cells = nb["cells"]
    folder = path.parent.relative_to(root).as_posix()
    first = cells[0]
    text = _text(first)
    new_badge = badge(path.stem, root, folder)
    text = BADGE_RE.sub(new_badge, text) if BADGE_RE.search(text) else text.replace("\n", f"\n\n{new_badge}\n", 1)
    first["source"] = text
    installs = [c for c in cells if INSTALL_TAG in _tags(c)]
    if installs:
        installs[0]["source"] = install_source(root)
    else:
        cells.insert(1, _cell("code", install_source(root), [INSTALL_TAG]))
    params = [c for c in cells if PARAMETERS_TAG in _tags(c)]
    if len(params) == 1:
        params[0]["source"] = parameters_source(path.stem)
    for c in cells:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    write(nb, path)
    return path.read_text() != before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gptforall_utils.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["sync", "check"])
    args = parser.parse_args(argv)
    bad = 0
    for path in all_notebooks():
        if args.command == "sync":
            if sync(path):
                print(f"synced  {path.relative_to(ROOT)}")
        for problem in check(path):
            bad += 1
            print(f"{path.relative_to(ROOT)}: {problem}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
