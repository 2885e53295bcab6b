"""Run the course: every notebook through papermill in a fresh kernel, then a results report.

    python -m gptforall_utils.course run --profile smoke|cpu|gpu|auto [--only 00 04 ...] [--solutions]
    python -m gptforall_utils.course list

Each notebook gets the parameters of the notebook contract (docs/DESIGN.md) with
OUTPUT_DIR=reports/<profile>; it writes reports/<profile>/<notebook>/metrics.json (and figures).
The runner records status and wall time, keeps the executed notebooks in
reports/<profile>/executed/, and writes reports/<profile>/results.md and results.json. It then checks each notebook's
learning bars (gptforall_utils/bars.py) against its metrics.json, puts the table in results.md and prints it. The exit
code is non-zero when a notebook fails (the notebook and cell are named) or a bar falls short (the bar is named).

    python -m gptforall_utils.course bars --profile cpu     # check the bars of an existing report again
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
REPORTS = ROOT / "reports"
KERNEL_NAME = "gptforall"


@dataclass
class NotebookResult:
    notebook: str
    status: str  # "ok" | "failed"
    seconds: float
    metrics: dict = field(default_factory=dict)
    error: str = ""
    executed: str = ""


def discover(notebooks_dir: Path = NOTEBOOKS, only: list[str] | None = None, solutions: bool = False) -> list[Path]:
    """Numbered notebooks (NN_topic.ipynb) in order; `only` filters by number or stem prefix."""
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if solutions:
        found += sorted((notebooks_dir / "solutions").glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = [str(o) for o in only]
        picked = [p for p in found if any(p.stem.startswith(w) for w in wanted)]
        unknown = [w for w in wanted if not any(p.stem.startswith(w) for p in found)]
        if unknown:
            raise ValueError(f"No notebook matches {unknown}; notebooks: {', '.join(p.stem for p in found)}")
        found = picked
    if not found:
        raise FileNotFoundError(f"No notebooks found in {notebooks_dir}.")
    return found


def ensure_kernel() -> str:
    """A Jupyter kernel spec for this interpreter, so notebooks run with the course's packages."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if spec.argv and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return KERNEL_NAME
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL_NAME, display_name="GPTforAll (course venv)", prefix=sys.prefix)
    return KERNEL_NAME


_KERNEL_MANAGER: list = []


def kernel_manager_class():
    """A kernel manager that gives each kernel CurveZMQ keys, so the traffic between runner and kernel (local
    TCP) is encrypted, and the kernel has no reason to warn, for every notebook, that it runs "over TCP without
    encryption". None (papermill's default manager, which warns) where pyzmq was built without Curve."""
    if not _KERNEL_MANAGER:
        import zmq

        cls = None
        if zmq.has("curve"):
            from jupyter_client import AsyncKernelManager
            from traitlets import default

            class CurveKernelManager(AsyncKernelManager):
                @default("transport_encryption")
                def _encrypted(self):
                    return "required"

            cls = CurveKernelManager
        _KERNEL_MANAGER.append(cls)
    return _KERNEL_MANAGER[0]


def run_notebook(path: Path, profile: str, output_dir: Path, seed: int = 0, model: str = "auto",
                 data: str = "auto", kernel: str | None = None, timeout: int | None = None) -> NotebookResult:
    """Execute one notebook with papermill; never raises for a failure inside the notebook."""
    import papermill as pm

    executed_dir = output_dir / "executed"
    executed_dir.mkdir(parents=True, exist_ok=True)
    executed = executed_dir / (path.stem + ".ipynb")
    stem = path.stem
    params = {"PROFILE": profile, "MODEL": model, "DATA": data, "OUTPUT_DIR": str(output_dir.resolve()),
              "SEED": seed}
    metrics_file = output_dir / stem / "metrics.json"
    if metrics_file.exists():
        metrics_file.unlink()  # never report a previous run's figures
    started = time.perf_counter()
    error = ""
    manager = kernel_manager_class()
    try:
        pm.execute_notebook(str(path), str(executed), parameters=params, cwd=str(path.parent),
                            kernel_name=kernel or ensure_kernel(), progress_bar=False,
                            execution_timeout=timeout, **({"kernel_manager_class": manager} if manager else {}))
        status = "ok"
    except pm.PapermillExecutionError as e:
        status = "failed"
        error = f"{_failing_cell(executed) or 'a cell'}: {e.ename}: {e.evalue}"
    except Exception as e:  # kernel died, timeout, bad notebook JSON
        status = "failed"
        error = f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - started
    metrics = {}
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
    elif status == "ok":
        status, error = "failed", f"the notebook did not write {metrics_file.relative_to(output_dir)}"
    return NotebookResult(stem, status, round(seconds, 1), metrics, error, str(executed))


def _failing_cell(executed: Path) -> str:
    """Name the cell that raised, by its first source line (found by its error output)."""
    try:
        cells = json.loads(executed.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return ""
    for cell in cells:
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            first = next((line for line in src.splitlines() if line.strip()), "")
            return f"cell starting {first.strip()[:70]!r}"
    return ""


def run_course(profile: str = "auto", only: list[str] | None = None, solutions: bool = False,
               reports: Path = REPORTS, seed: int = 0, model: str = "auto", data: str = "auto",
               notebooks_dir: Path = NOTEBOOKS, timeout: int | None = None) -> list[NotebookResult]:
    """Run the notebooks, write results.md/results.json, return the per-notebook results."""
    from tqdm.auto import tqdm

    from . import env

    profile = env.resolve_profile(profile)
    paths = discover(notebooks_dir, only, solutions)
    output_dir = Path(reports) / profile
    output_dir.mkdir(parents=True, exist_ok=True)
    kernel = ensure_kernel()
    results = []
    bar = tqdm(paths, desc=f"course [{profile}]", unit="notebook")
    for path in bar:
        bar.set_postfix_str(path.stem)
        res = run_notebook(path, profile, output_dir, seed, model, data, kernel, timeout)
        results.append(res)
        mark = "ok    " if res.status == "ok" else "FAILED"
        tqdm.write(f"{mark} {res.notebook:<40} {res.seconds:8.1f} s  {res.error}")
    write_report(merge_with_earlier(results, output_dir), output_dir, profile)
    return results


def merge_with_earlier(results: list[NotebookResult], output_dir: Path) -> list[NotebookResult]:
    """Keep the earlier entries of notebooks not run this time (e.g. after --only), so the report
    stays complete; entries are ordered by notebook name."""
    previous = output_dir / "results.json"
    if not previous.is_file():
        return results
    try:
        earlier = {n["notebook"]: NotebookResult(**n) for n in json.loads(previous.read_text())["notebooks"]}
    except (ValueError, KeyError, TypeError):
        return results
    earlier.update({r.notebook: r for r in results})
    return [earlier[k] for k in sorted(earlier)]


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def bar_results(results: list[NotebookResult], profile: str) -> list:
    """Every learning bar of the notebooks in `results`, checked against their recorded figures (bars.py)."""
    from . import bars

    return [b for r in results for b in bars.check(r.notebook, profile, r.metrics if r.status == "ok" else None)]


def write_report(results: list[NotebookResult], output_dir: Path, profile: str) -> Path:
    """reports/<profile>/results.md (tables, learning bars, figures) and results.json (machine-readable)."""
    from . import bars, env

    info = env.environment()
    lines = [
        f"# GPTforAll course results — profile `{profile}`",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M:%S %Z')} on {info['device']} ({info['precision']}), "
        f"{info['cpu_threads']} CPU threads, {info['ram_gb']} GiB RAM"
        + (f", {info['gpu']} {info['gpu_memory_gb']} GiB" if "gpu" in info else "")
        + f"; torch {info['torch']}, transformers {info['transformers']}, peft {info['peft']}, trl {info['trl']}.",
        "",
        "| notebook | status | time (s) | key figures |",
        "| --- | --- | ---: | --- |",
    ]
    for r in results:
        figures = ", ".join(f"{k}={_fmt(v)}" for k, v in r.metrics.items() if k != "profile")
        status = "ok" if r.status == "ok" else f"**FAILED**: {r.error}"
        lines.append(f"| {r.notebook} | {status} | {r.seconds:.1f} | {figures} |")
    total = sum(r.seconds for r in results)
    lines += ["", f"Total: {total:.0f} s for {len(results)} notebook(s).", ""]
    checked = bar_results(results, profile)
    lines += ["## Learning bars", ""]
    if checked:
        short = [b for b in checked if not b.holds]
        lines += [f"{len(checked) - len(short)} of {len(checked)} bars hold"
                  + (f"; **{len(short)} fall short**." if short else "."), ""]
        lines += bars.table(checked) + [""]
    else:
        lines += [f"No bars in the `{profile}` profile for these notebooks (bars: gptforall_utils/bars.py; the smoke "
                  "profile proves that the code runs, not that learning happens).", ""]
    for r in results:
        lines += [f"## {r.notebook}", ""]
        if r.metrics:
            lines += ["| figure | value |", "| --- | ---: |"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in r.metrics.items()]
            lines.append("")
        folder = output_dir / r.notebook
        for png in sorted(folder.glob("*.png")) if folder.is_dir() else []:
            lines.append(f"![{png.stem}]({r.notebook}/{png.name})")
        lines += ["", f"Executed notebook: `executed/{r.notebook}.ipynb`", ""]
    out = output_dir / "results.md"
    out.write_text("\n".join(lines) + "\n")
    bar_rows = [{"notebook": b.bar.notebook, "check": b.bar.check, "status": b.status, "values": b.values}
                for b in checked]
    (output_dir / "results.json").write_text(json.dumps(
        {"profile": profile, "environment": info, "notebooks": [asdict(r) for r in results], "bars": bar_rows},
        indent=2) + "\n")
    return out


def print_bars(checked: list) -> list:
    """Print the bar table to the terminal; returns the bars that fall short."""
    short = [b for b in checked if not b.holds]
    if not checked:
        return short
    print(f"\nLearning bars: {len(checked) - len(short)} of {len(checked)} hold")
    for b in checked:
        mark = "holds " if b.holds else b.status.upper().ljust(6)
        print(f"  {mark} {b.bar.notebook}  {b.bar.check}    [{b.describe_values()}]")
    for b in short:
        print(f"BAR {b.status.upper()} in {b.bar.notebook}: {b.bar.check} ({b.bar.why}; {b.describe_values()})",
              file=sys.stderr)
    return short


def load_report(output_dir: Path) -> list[NotebookResult]:
    """The notebooks of an existing report (results.json), for checking its bars again."""
    path = Path(output_dir) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"No report at {path}; run `python -m gptforall_utils.course run` first.")
    return [NotebookResult(**n) for n in json.loads(path.read_text())["notebooks"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gptforall_utils.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute notebooks and write the report")
    r.add_argument("--profile", default="auto", help="smoke | cpu | gpu | auto (gpu with CUDA, else cpu)")
    r.add_argument("--only", nargs="+", help="notebook numbers or stems, e.g. 00 04")
    r.add_argument("--solutions", action="store_true", help="also run notebooks/solutions/")
    r.add_argument("--reports", default=str(REPORTS), help="report folder (default reports/)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--model", default="auto")
    r.add_argument("--data", default="auto")
    r.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    r.add_argument("--notebooks-dir", default=str(NOTEBOOKS), help="folder of NN_topic.ipynb notebooks")
    b = sub.add_parser("bars", help="check the learning bars of an existing report (reports/<profile>/results.json)")
    b.add_argument("--profile", default="auto", help="cpu | gpu | auto")
    b.add_argument("--reports", default=str(REPORTS), help="report folder (default reports/)")
    sub.add_parser("list", help="list the notebooks")
    args = parser.parse_args(argv)
    if args.command == "list":
        for p in discover(solutions=True):
            print(p.relative_to(ROOT))
        return 0
    if args.command == "bars":
        from .env import resolve_profile

        profile = resolve_profile(args.profile)
        checked = bar_results(load_report(Path(args.reports) / profile), profile)
        if not checked:
            print(f"No bars in the {profile} profile for the notebooks of this report.")
        return 1 if print_bars(checked) else 0
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    results = run_course(args.profile, args.only, args.solutions, Path(args.reports), args.seed, args.model,
                         args.data, notebooks_dir=Path(args.notebooks_dir), timeout=args.timeout)
    failed = [r for r in results if r.status != "ok"]
    from .env import resolve_profile

    profile = resolve_profile(args.profile)
    short = print_bars(bar_results(results, profile))
    report = Path(args.reports) / profile / "results.md"
    print(f"\n{len(results) - len(failed)}/{len(results)} notebooks ok; report: {report}")
    for f in failed:
        print(f"FAILED {f.notebook}: {f.error}  (see {f.executed})", file=sys.stderr)
    return 1 if failed or short else 0


if __name__ == "__main__":
    raise SystemExit(main())
