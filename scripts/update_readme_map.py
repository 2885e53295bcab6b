"""Regenerate the README course map from the notebooks and the runner's measured times.

    python scripts/update_readme_map.py            # rewrite README.md between the markers
    python scripts/update_readme_map.py --check    # exit 1 when the map is stale

One row per notebook in notebooks/: number, title (the first cell's heading), Colab badge
(gptforall_utils.notebooks.badge) and the wall time measured by `python -m gptforall_utils.course`
in reports/<profile>/results.json for the smoke, cpu and gpu profiles; "—" where a profile was not
measured (or the notebook failed there). Only the text between `<!-- course-map:start -->` and
`<!-- course-map:end -->` changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gptforall_utils import notebooks  # noqa: E402

START, END = "<!-- course-map:start -->", "<!-- course-map:end -->"
PROFILES = ("smoke", "cpu", "gpu")
MISSING = "—"


def title(path: Path) -> str:
    """The first markdown heading of the notebook's first cell, without the leading '#'."""
    nb = json.loads(path.read_text())
    cells = nb.get("cells", [])
    text = "".join(cells[0]["source"]) if cells and isinstance(cells[0]["source"], list) else (
        cells[0]["source"] if cells else "")
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            return line.lstrip("# ").strip()
    raise ValueError(f"{path.name}: the first cell has no '# Title' heading.")


def measured_times(reports: Path) -> dict[str, dict[str, float]]:
    """{profile: {notebook stem: seconds}} from reports/<profile>/results.json (successful runs only)."""
    times: dict[str, dict[str, float]] = {}
    for profile in PROFILES:
        file = reports / profile / "results.json"
        if not file.is_file():
            continue
        try:
            rows = json.loads(file.read_text())["notebooks"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{file} is not a course results file ({e}); rerun `python -m gptforall_utils.course`.") from e
        times[profile] = {r["notebook"]: float(r["seconds"]) for r in rows if r.get("status") == "ok"}
    return times


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def course_map(root: Path = ROOT, reports: Path | None = None) -> str:
    """The markdown table (without the markers)."""
    reports = reports or root / "reports"
    times = measured_times(reports)
    paths = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"No notebooks in {root / 'notebooks'}.")
    lines = ["| # | notebook | open | smoke | cpu | gpu |", "| --- | --- | --- | ---: | ---: | ---: |"]
    for path in paths:
        number = path.stem[:2]
        solutions = root / "notebooks" / "solutions" / f"{path.stem}_solutions.ipynb"
        name = f"[{title(path)}](notebooks/{path.name})"
        if solutions.is_file():
            name += f" · [solutions](notebooks/solutions/{solutions.name})"
        cells = [fmt_seconds(times.get(p, {}).get(path.stem)) for p in PROFILES]
        lines.append(f"| {number} | {name} | {notebooks.badge(path.stem, root)} | " + " | ".join(cells) + " |")
    measured = [p for p in PROFILES if p in times]
    note = (f"Times: wall-clock per notebook from `python -m gptforall_utils.course run` "
            f"(reports/<profile>/results.json; measured: {', '.join(measured) or 'none yet'}); "
            f"{MISSING} = not measured.")
    return "\n".join(lines + ["", note])


def update(readme: Path, root: Path = ROOT, reports: Path | None = None) -> bool:
    """Rewrite the map in `readme`; True when the file changed."""
    text = readme.read_text()
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"{readme} needs exactly one '{START}' followed by one '{END}' marker.")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{course_map(root, reports)}\n{END}{tail}"
    if new == text:
        return False
    readme.write_text(new)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    parser.add_argument("--reports", default=str(ROOT / "reports"))
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 when the map is stale")
    args = parser.parse_args(argv)
    readme = Path(args.readme)
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "README.md"
            copy.write_text(readme.read_text())
            stale = update(copy, ROOT, Path(args.reports))
        print("course map is stale: run python scripts/update_readme_map.py" if stale else "course map up to date")
        return 1 if stale else 0
    changed = update(readme, ROOT, Path(args.reports))
    print(f"{'updated' if changed else 'unchanged'}: {readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
