"""Regenerate the README course map from the notebooks and the runner's measured times.

    python scripts/update_readme_map.py            # rewrite README.md between the markers
    python scripts/update_readme_map.py --check    # exit 1 when the map is stale

One row per notebook in notebooks/: number, title (the first cell's heading), Colab badge
(gptforall_utils.notebooks.badge) and the wall time measured by `python -m gptforall_utils.course`
in reports/<profile>/results.json for the smoke, cpu and gpu profiles; "—" where a profile was not
measured (or the notebook failed there). Only the text between `<!-- course-map:start -->` and
`<!-- course-map:end -->` changes.

The gpu column takes every gpu-profile report it finds: reports/gpu/results.json, reports/*/gpu/results.json (the
streams of benchmarks/gpu_session.sh: reports/gpu-card, reports/gpu-t4emulated) and the copies the session keeps in
benchmarks/results/gpu_session/*/results.json, and labels each time with the card that ran it, read from the
report's environment: "H100", or "H100, T4-emulated" for a run with GPTFORALL_PRECISION=fp16 and
GPTFORALL_GPU_MEMORY_GB <= 16 on a card that is not a T4. A time is never labelled T4 unless a T4 ran it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gptforall_utils import notebooks  # noqa: E402

START, END = "<!-- course-map:start -->", "<!-- course-map:end -->"
PROFILES = ("smoke", "cpu", "gpu")
MISSING = "—"
# Card families, as torch names them ("NVIDIA H100 80GB HBM3", "Tesla T4", "NVIDIA A100-SXM4-40GB", "NVIDIA L4").
CARDS = re.compile(r"(?<![A-Za-z0-9])(GH200|H200|H100|H800|H20|B200|B100|A100|A800|A10G|A10|A30|A40|A6000|"
                   r"L40S|L40|L4|T4|V100|P100|P4|K80|RTX \w+)(?![A-Za-z0-9])")
T4_GB = 16  # a Colab T4 offers 15 GB: a cap at or under this, with fp16, emulates one


def card_name(gpu: str) -> str:
    """The card's short name: 'H100' for 'NVIDIA H100 80GB HBM3', 'T4' for 'Tesla T4'."""
    found = CARDS.search(gpu or "")
    if found:
        return found.group(1)
    return re.sub(r"^(NVIDIA|Tesla|AMD)\s+", "", (gpu or "").strip()) or "GPU"


def gpu_label(environment: dict) -> str:
    """What ran a report, from its `environment` (env.environment()): the card, and the emulation the overrides
    made of it. 'H100'; 'H100, T4-emulated' (fp16 and at most 16 GiB on another card); 'H100, fp16, 40 GiB cap'
    for other overrides; 'CPU' for a run without CUDA; 'card not recorded' when the report does not say."""
    if not environment:
        return "card not recorded"
    if environment.get("device") != "cuda" or not environment.get("gpu"):
        return "CPU" if environment.get("device") == "cpu" else "card not recorded"
    card = card_name(environment["gpu"])
    prec = str(environment.get("GPTFORALL_PRECISION", "unset")).strip().lower()
    cap = str(environment.get("GPTFORALL_GPU_MEMORY_GB", "unset")).strip()
    try:
        cap_gb = float(cap)
    except ValueError:
        cap_gb = None
    if card != "T4" and prec == "fp16" and cap_gb is not None and cap_gb <= T4_GB:
        return f"{card}, T4-emulated"
    extras = ([prec] if prec not in ("", "unset") else []) + ([f"{cap} GiB cap"] if cap not in ("", "unset") else [])
    return ", ".join([card] + extras)


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


def _read(file: Path) -> dict:
    try:
        report = json.loads(file.read_text())
        report["notebooks"]  # noqa: B018 - a course results file has this list
        return report
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{file} is not a course results file ({e}); rerun `python -m gptforall_utils.course`.") from e


def _ok_times(report: dict) -> dict[str, float]:
    return {r["notebook"]: float(r["seconds"]) for r in report["notebooks"] if r.get("status") == "ok"}


def measured_times(reports: Path) -> dict[str, dict[str, float]]:
    """{profile: {notebook stem: seconds}} from reports/<profile>/results.json (successful runs only)."""
    times: dict[str, dict[str, float]] = {}
    for profile in PROFILES:
        file = reports / profile / "results.json"
        if file.is_file():
            times[profile] = _ok_times(_read(file))
    return times


def gpu_report_files(root: Path, reports: Path) -> list[Path]:
    """Every gpu-profile report: reports/gpu, reports/<stream>/gpu, then the GPU session's kept copies."""
    files = [reports / "gpu" / "results.json", *sorted(reports.glob("*/gpu/results.json"))]
    files += sorted((root / "benchmarks" / "results" / "gpu_session").glob("*/results.json"))
    return [f for f in files if f.is_file()]


def gpu_times(root: Path, reports: Path) -> dict[str, dict[str, float]]:
    """{notebook stem: {label: seconds}} over the gpu-profile reports, labelled by gpu_label. Of two reports with
    the same label, the first found keeps its time (reports/ before the session's kept copies)."""
    times: dict[str, dict[str, float]] = {}
    for file in gpu_report_files(root, reports):
        report = _read(file)
        if report.get("profile", "gpu") != "gpu":
            continue
        label = gpu_label(report.get("environment", {}))
        for stem, seconds in _ok_times(report).items():
            times.setdefault(stem, {}).setdefault(label, seconds)
    return times


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def gpu_cell(labelled: dict[str, float]) -> str:
    """'72 s (H100) · 1.6 min (H100, T4-emulated)'; MISSING when no gpu run finished."""
    return " · ".join(f"{fmt_seconds(t)} ({label})" for label, t in sorted(labelled.items())) or MISSING


def course_map(root: Path = ROOT, reports: Path | None = None) -> str:
    """The markdown table (without the markers)."""
    reports = reports or root / "reports"
    times = measured_times(reports)
    times.pop("gpu", None)  # the gpu column comes from gpu_times, labelled with the card
    gpu = gpu_times(root, reports)
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
        cells = [fmt_seconds(times.get(p, {}).get(path.stem)) for p in PROFILES if p != "gpu"]
        cells.append(gpu_cell(gpu.get(path.stem, {})))
        lines.append(f"| {number} | {name} | {notebooks.badge(path.stem, root)} | " + " | ".join(cells) + " |")
    labels = sorted({label for stems in gpu.values() for label in stems})
    measured = [p for p in PROFILES if p in times] + ([f"gpu ({'; '.join(labels)})"] if labels else [])
    note = (f"Times: wall-clock per notebook from `python -m gptforall_utils.course run` "
            f"(reports/<profile>/results.json; measured: {', '.join(measured) or 'none yet'}); "
            f"{MISSING} = not measured. A gpu time names the card that ran it (\"T4-emulated\": a T4's fp16 and "
            f"15 GB on a larger card, its speed that card's).")
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
