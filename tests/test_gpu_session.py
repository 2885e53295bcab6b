"""benchmarks/gpu_session.sh (issue 21): the judged runs first, each result on disk as soon as it exists, a cut run
keeps what finished; its usage text is the calls `../shared/tools/gpu-check calls` prints; bench_training's trimmed
mode writes a row per measurement.

The script is run for real with a stand-in PYTHON that answers for the course runner and the two benchmarks in a
fraction of a second (and records each call), so the order, the streams, the records and the cut are the script's
own, in seconds. The dry run on a CPU (GPU_SESSION_DRY_RUN=1, real notebooks) is in benchmarks/README.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

from gptforall_utils import notebooks

ROOT = notebooks.ROOT
SCRIPT = ROOT / "benchmarks" / "gpu_session.sh"
GPU_CHECK = ROOT.parent / "shared" / "tools" / "gpu-check"

FAKE_PY = r'''
import json, os, sys, time
from pathlib import Path

sys.path.insert(0, os.getcwd())  # the repository: the script runs from its root
from gptforall_utils import bars

args = sys.argv[1:]
progress = Path(os.environ["FAKE_PROGRESS"])
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps({"t": time.time(), "pid": os.getpid(), "args": args,
                        "progress_lines": len(progress.read_text().splitlines()) if progress.exists() else 0,
                        "precision": os.environ.get("GPTFORALL_PRECISION", ""),
                        "memory": os.environ.get("GPTFORALL_GPU_MEMORY_GB", ""),
                        "threads": os.environ.get("OMP_NUM_THREADS", "")}) + "\n")


def opt(name):
    return args[args.index(name) + 1] if name in args else None


if args[:3] == ["-m", "gptforall_utils.course", "run"]:
    item, profile, reports = opt("--only"), opt("--profile"), Path(opt("--reports"))
    time.sleep(float(os.environ.get(f"FAKE_SLEEP_{item}", "0.05")))
    folder = reports / profile
    stem = item if "_" in item else f"{item}_notebook"
    metrics = {"04": {"accuracy_lora": 0.9, "accuracy_zero_shot": 0.7, "lora_first_loss": 0.7, "lora_final_loss": 0.2},
               "07": {"accuracy_lora": 0.5, "accuracy_zero_shot": 0.3}}.get(item, {"x": 1})
    (folder / stem).mkdir(parents=True, exist_ok=True)
    (folder / stem / "metrics.json").write_text(json.dumps(metrics))
    executed = folder / "executed" / f"{stem}.ipynb"
    environment = {"device": "cuda", "gpu": "NVIDIA H100 80GB HBM3",
                   "GPTFORALL_PRECISION": os.environ.get("GPTFORALL_PRECISION") or "unset",
                   "GPTFORALL_GPU_MEMORY_GB": os.environ.get("GPTFORALL_GPU_MEMORY_GB") or "unset"}
    file = folder / "results.json"
    earlier = json.loads(file.read_text())["notebooks"] if file.exists() else []
    rows = [r for r in earlier if r["notebook"] != stem] + [
        {"notebook": stem, "status": "ok", "seconds": 1.5, "metrics": metrics, "error": "", "executed": str(executed)}]
    checked = [b for r in rows for b in bars.check(r["notebook"], profile, r["metrics"])]  # as the runner does
    file.write_text(json.dumps({"profile": profile, "environment": environment, "notebooks": rows, "bars": [
        {"notebook": b.bar.notebook, "check": b.bar.check, "status": b.status, "values": b.values} for b in checked]}))
    (folder / "results.md").write_text("# results\n")
elif args and args[0].endswith("sdpa_masked_rows.py"):
    guard = [{"padding": "left", "checkpointing": False, "precision": "bf16", "first_flagged_step": 1,
              "flagged": "Training diverged at optimizer step 1 of 20: ..."},
             {"padding": "right", "checkpointing": False, "precision": "bf16", "first_flagged_step": None, "flagged": ""}]
    out = Path(opt("--results-dir")) / f"{opt('--name')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": "NVIDIA H100 80GB HBM3", "guard": guard}))
elif args and args[0].endswith("bench_training.py"):
    out = Path(opt("--results-dir")) / "training_cuda.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": [{"setting": "trl_defaults"}, {"setting": "project"}], "complete": True}))
else:
    sys.exit(f"unexpected call: {args}")
'''


def _session(tmp_path, fake=FAKE_PY, **overrides):
    """Run gpu_session.sh (not a dry run: the GPU session's own stages) with the stand-in PYTHON."""
    impl, wrapper = tmp_path / "fake_impl.py", tmp_path / "fakepy"
    impl.write_text(fake)
    wrapper.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env bash
        case "${{1:-}}" in -|-c) exec {sys.executable} "$@";; esac
        exec {sys.executable} {impl} "$@"
        """))
    wrapper.chmod(0o755)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": str(wrapper), "GPU_SESSION_OUT": str(out),
           "GPU_SESSION_REPORTS": str(tmp_path / "reports"), "GPU_SESSION_RESULTS": str(tmp_path / "results"),
           "FAKE_LOG": str(tmp_path / "calls.jsonl"), "FAKE_PROGRESS": str(out / "progress.log"),
           "SMOKE_NOTEBOOKS": "00 04", "SMOKE_WORKERS": "2", "GPU_SESSION_SECONDS": "300"}
    env.pop("GPU_SESSION_DRY_RUN", None)
    env.update({k: str(v) for k, v in overrides.items()})
    started = time.monotonic()
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - started
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    progress = [json.loads(line) for line in (out / "progress.log").read_text().splitlines()]
    return proc, calls, progress, out, wall


def _kind(call) -> str:
    a = call["args"]
    if a[:3] == ["-m", "gptforall_utils.course", "run"]:
        return "stage1" if a[a.index("--profile") + 1] == "gpu" else "smoke"
    return "sdpa" if a[0].endswith("sdpa_masked_rows.py") else "bench"


def test_stages_run_in_order_and_each_result_is_written_when_it_ends(tmp_path):
    proc, calls, progress, out, _ = _session(tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    kinds = [_kind(c) for c in calls]
    # 1. the judged notebooks, 2. smoke, 3. the diagnosis, 4. the benchmark: never out of order.
    order = ["stage1", "smoke", "sdpa", "bench"]
    assert [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]] == order, kinds
    stage1 = [c for c in calls if _kind(c) == "stage1"]
    streams = {}
    for c in stage1:
        a = c["args"]
        streams.setdefault(os.path.basename(a[a.index("--reports") + 1]), []).append(
            (a[a.index("--only") + 1], c["precision"], c["memory"]))
    # Side by side, one `course run` per notebook, each stream with its own --reports folder and settings.
    assert streams == {"gpu-card": [("04", "", ""), ("07", "", "")],
                       "gpu-t4emulated": [("04", "fp16", "15"), ("07", "fp16", "15")]}
    # Separate CPU threads: 2 x 5 for stage 1, 2 per smoke worker (3 x 2 when the stages overlap).
    assert {c["threads"] for c in stage1} == {"5"} and {c["threads"] for c in calls if _kind(c) == "smoke"} == {"2"}
    smoke = [c["args"][c["args"].index("--only") + 1] for c in calls if _kind(c) == "smoke"]
    assert sorted(smoke) == ["00", "00_quickstart_solutions", "04", "04_sentiment_classification_solutions"]
    assert smoke.index("04_sentiment_classification_solutions") > max(smoke.index("00"), smoke.index("04"))
    # Written as each item ends: when a stage starts, the earlier stages' records are already on disk.
    first = {k: next(c for c in calls if _kind(c) == k) for k in order}
    assert first["smoke"]["progress_lines"] == 4
    assert first["sdpa"]["progress_lines"] == 8
    assert first["bench"]["progress_lines"] == 10
    # The records: the card's label (never a T4), the judged bars from each run's figures.
    judged = {(r["stream"], r["item"]): r for r in progress if r["stage"] == 1}
    assert {k: r["label"] for k, r in judged.items()} == {
        ("gpu-card", "04"): "H100", ("gpu-card", "07"): "H100",
        ("gpu-t4emulated", "04"): "H100, T4-emulated", ("gpu-t4emulated", "07"): "H100, T4-emulated"}
    assert all(r["status"] == "ok" and r["bars"]["passed"] and r["bars"]["judged"] for r in judged.values())
    figures = judged["gpu-card", "04"]["bars"]["figures"]   # the course runner's bars (gptforall_utils/bars.py)
    assert "accuracy_lora >= 0.85: holds" in figures and "lora_final_loss < lora_first_loss: holds" in figures
    assert "accuracy_lora > accuracy_zero_shot: holds" in judged["gpu-card", "07"]["bars"]["figures"]
    assert [r["status"] for r in progress if r["stage"] == 2] == ["ok"] * 4
    commands = {r["item"]: r for r in progress if r["kind"] == "command"}
    assert set(commands) == {"sdpa_masked_rows", "sdpa_masked_rows_fp16", "bench_training"}
    assert "left padding, checkpointing off: 1; right padding, checkpointing off: none" in \
        commands["sdpa_masked_rows"]["figures"]
    assert commands["bench_training"]["figures"].startswith("2 rows")
    assert (out / "gpu-card" / "results.json").is_file() and (out / "gpu-t4emulated" / "04_notebook").is_dir()
    summary = (out / "session.md").read_text()
    assert summary.count("PASS") == 4 and "cut at the end of the budget: nothing" in summary


def test_a_cut_keeps_what_finished_and_says_what_was_cut(tmp_path):
    # 07 would take two minutes; the budget ends after 30 s (04 and its record take a second or two).
    # One smoke worker: with two, which of them takes notebook 00 from the shared queue is a race.
    proc, calls, progress, out, wall = _session(tmp_path, GPU_SESSION_SECONDS=30, FAKE_SLEEP_07=120, STAGE2_AT=100,
                                                SMOKE_NOTEBOOKS="00", SMOKE_SOLUTIONS=0, MIN_NOTEBOOK=1, MIN_COMMAND=1,
                                                SMOKE_WORKERS=1)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert wall < 90       # the budget, then a few seconds to stop the cut runs and write the summary
    status = {(r["stream"], r["item"]): r["status"] for r in progress}
    assert status == {("gpu-card", "04"): "ok", ("gpu-t4emulated", "04"): "ok",
                      ("gpu-card", "07"): "cut", ("gpu-t4emulated", "07"): "cut",
                      ("gpu-smoke-1", "00"): "skipped", ("sdpa_masked_rows", "sdpa_masked_rows"): "skipped",
                      ("sdpa_masked_rows_fp16", "sdpa_masked_rows_fp16"): "skipped",
                      ("bench_training", "bench_training"): "skipped"}
    assert all(_kind(c) == "stage1" for c in calls)          # nothing after the cut was started
    for c in calls:                                          # the cut runs were stopped, not left behind
        if "07" in c["args"]:
            with pytest.raises(ProcessLookupError):
                os.kill(c["pid"], 0)
    # What finished before the cut is kept, with its bar.
    assert next(r for r in progress if r["item"] == "04" and r["stream"] == "gpu-card")["bars"]["passed"]
    assert json.loads((out / "gpu-card" / "results.json").read_text())["notebooks"][0]["notebook"] == "04_notebook"
    summary = (out / "session.md").read_text()
    assert "cut at the end of the budget: gpu-card 07, gpu-t4emulated 07" in summary or \
        "cut at the end of the budget: gpu-t4emulated 07, gpu-card 07" in summary
    assert "not started (too little time left): gpu-smoke-1 00, sdpa_masked_rows" in summary
    assert "| cut |" in (out / "progress.md").read_text()


def test_a_failed_bar_is_recorded_as_failed(tmp_path):
    """The bars are read from the report: 04 below 0.85, or a loss that does not fall, fails."""
    below = FAKE_PY.replace('"accuracy_lora": 0.9', '"accuracy_lora": 0.84')
    flat = FAKE_PY.replace('"lora_first_loss": 0.7', '"lora_first_loss": 0.1')
    for fake, why in ((below, "accuracy_lora >= 0.85: short"), (flat, "lora_final_loss < lora_first_loss: short")):
        folder = tmp_path / why.split()[0]
        folder.mkdir()
        _, _, progress, out, _ = _session(folder, fake, SMOKE_NOTEBOOKS="00", SMOKE_SOLUTIONS=0, STAGE1_NOTEBOOKS="04",
                                          MIN_COMMAND=1000)
        bars = [r["bars"] for r in progress if "bars" in r]
        assert len(bars) == 2 and not any(b["passed"] for b in bars) and why in bars[0]["figures"], bars
        assert "FAIL" in (out / "session.md").read_text()


def _documented_calls(text: str) -> list[str]:
    return re.findall(r"command: (cat \.device/part\.[KN]/chunk >> /tmp/stage\.tar && .*?)\s*$", text, re.M)


def test_usage_is_the_calls_gpu_check_prints(tmp_path):
    """The script's header, benchmarks/README.md and the README give the calls as `gpu-check calls` prints them,
    the last with DEADLINE and GPU_CHECK set for this script (it also appends its own chunk)."""
    ours = "DEADLINE=560 GPU_CHECK='bash benchmarks/gpu_session.sh' "
    documented = {name: _documented_calls(path.read_text()) for name, path in
                  {"script": SCRIPT, "benchmarks/README.md": ROOT / "benchmarks" / "README.md",
                   "README.md": ROOT / "README.md"}.items()}
    for name, found in documented.items():
        assert len(found) == 2, (name, found)
        assert found == documented["script"], name
    if not GPU_CHECK.is_file():
        pytest.skip(f"{GPU_CHECK} is not here: the documented form is checked above, not gpu-check's")
    # gpu-check prints the calls from the parts it staged: three empty parts stand in for a staging.
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for k in (1, 2, 3):
        (tmp_path / ".device" / f"part.{k}").mkdir(parents=True)
    printed = subprocess.run(["bash", str(GPU_CHECK), "calls"], cwd=tmp_path, capture_output=True, text=True,
                             check=True).stdout
    calls = re.findall(r"call (\d): carry \[\"(\.device/part\.\d)\"\]  command: (.*)$", printed, re.M)
    assert [c[0] for c in calls] == ["1", "2", "3"], printed
    middle, last = calls[1][2], calls[2][2]
    assert middle.replace("part.2", "part.K") == documented["script"][0]
    assert "bash .device/part.3/run.sh" in last
    assert last.replace("bash .device/part.3/run.sh", ours + "bash .device/part.3/run.sh").replace(
        "part.3", "part.N") == documented["script"][1]
    assert "DEADLINE=<seconds>" in printed and "GPU_CHECK=" in printed   # the two settings gpu-check documents


# ---------------------------------------------------------------- bench_training --trimmed
def _bench():
    spec = importlib.util.spec_from_file_location("bench_training", ROOT / "benchmarks" / "bench_training.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_trimmed_appends_a_row_per_measurement(tmp_path, monkeypatch):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from gptforall_utils import models, training

    bench = _bench()
    # What is tested is how rows are written, not the speed: a two-layer model of the embedded one's shape family
    # with its tokenizer trains in milliseconds a step, and the matmul peak is not measured.
    tok = models.load_tokenizer("auto")

    def tiny_model(*args, **kwargs):
        torch.manual_seed(0)
        return LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                            pad_token_id=tok.pad_token_id, tie_word_embeddings=True))

    monkeypatch.setattr(bench.models, "load_model", tiny_model)
    monkeypatch.setattr(bench, "matmul_peak_gflops", lambda dev: 100.0)
    md, js = tmp_path / "training_cpu.md", tmp_path / "training_cpu.json"
    seen = []
    real = training.run_trainer

    def spy(trainer, method):  # what is on disk when each row starts training
        rows = [line for line in md.read_text().splitlines() if line.startswith("| lora |")]
        seen.append((len(rows), len(json.loads(js.read_text())["runs"]), json.loads(js.read_text())["complete"]))
        return real(trainer, method)

    monkeypatch.setattr(training, "run_trainer", spy)
    assert bench.main(["--trimmed", "--steps", "2", "--examples", "8", "--batch", "4", "--methods", "lora",
                       "--settings", "project,trainer_defaults", "--results-dir", str(tmp_path)]) == 0
    # The reference row is measured first, and each row is on disk before the next one starts.
    assert seen == [(0, 0, False), (1, 1, False)]
    result = json.loads(js.read_text())
    assert result["complete"] is True and [r["setting"] for r in result["runs"]] == ["trainer_defaults", "project"]
    project = result["runs"][1]
    assert project["vs_trainer_defaults"] == pytest.approx(
        project["tokens_per_second"] / result["runs"][0]["tokens_per_second"], abs=0.01)
    lines = md.read_text().splitlines()
    assert [line.split("|")[3].strip() for line in lines if line.startswith("| lora |")] == \
        ["trainer_defaults", "project"]
    assert lines[-1].startswith("finished: 2 rows")
