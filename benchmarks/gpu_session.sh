#!/usr/bin/env bash
# One GPU session (issue 21): the judged runs first, each result written to disk as soon as it exists.
#
# How to run it: the calls `../shared/tools/gpu-check calls` prints, the last one with this script as GPU_CHECK.
#   ../shared/tools/gpu-check prepare      # here, in the repository root, after `make assets`; prints the calls
#   call K (K = 1 .. N-1):  carry [".device/part.K"]  command: cat .device/part.K/chunk >> /tmp/stage.tar && ls -l /tmp/stage.tar
#   call N (the last):      carry [".device/part.N"]  timeout_s 600
#                           command: cat .device/part.N/chunk >> /tmp/stage.tar && DEADLINE=560 GPU_CHECK='bash benchmarks/gpu_session.sh' bash .device/part.N/run.sh
# Make the calls one after another (a machine left idle ~30 s is given back, and the staged parts with it).
# run.sh spends ~80 s on setup, starts this script, and at DEADLINE s packs reports/ and benchmarks/results/ into
# $OUT/results.tar.gz. This script stops its own work MARGIN (25) s before DEADLINE, counted from run.sh's start
# (read from /proc; DEADLINE - 105 s after its own start when it cannot tell), so the packing always finds the
# results finished so far. DEADLINE=560 needs timeout_s 600 and about 11 minutes of device time left before the
# last call; with less, set DEADLINE to (budget_left_s - 120).
#
# The stages, in this order, within the budget (about 455 s of work with DEADLINE=560):
#   1. notebooks 04 and 07 in the gpu profile, two streams side by side, each with its own CPU threads and
#      --reports folder: as the card is (reports/gpu-card, labelled e.g. "H100") and T4-emulated with
#      GPTFORALL_PRECISION=fp16 GPTFORALL_GPU_MEMORY_GB=15 (reports/gpu-t4emulated, "H100, T4-emulated": a T4's
#      precision and memory on this card, never a T4). After each notebook its learning bars, as the course runner
#      checked them against its metrics.json (gptforall_utils/bars.py, in results.json), are recorded: among them
#      the judged ones, 04's LoRA accuracy >= 0.85 with a falling loss and 07's LoRA accuracy above zero-shot.
#   2. every notebook in the smoke profile as the card is (SMOKE_WORKERS=3 workers of 2 threads taking the longest
#      first from one queue, each with its own --reports folder reports/gpu-smoke-W), then the solutions while more
#      than RESERVE (120) s are left. It starts when stage 1 is done, or at STAGE2_AT (half the budget) alongside a stage 1 still
#      running, so that both judged stages get time.
#   3. the diagnosis of the earlier collapse (benchmarks/sdpa_masked_rows.py), as the card is and with fp16, side by
#      side: NaN from fully masked attention rows per SDPA backend; one LoRA step with left vs right padding and
#      checkpointing on and off; the first step training.FiniteGuard flags in 20 steps of notebook 04's training.
#      Results: benchmarks/results/sdpa_masked_rows_cuda{,_fp16}.{md,json}.
#   4. the trimmed training benchmark alone on the card (benchmarks/bench_training.py --trimmed): TRL defaults and the
#      project's settings, LoRA and full, at batch 8 then at the course's batch, one row appended to
#      benchmarks/results/training_cuda.md (and its .json rewritten) as each row is measured.
# A stage starts only with time left (a notebook 15 s, the diagnosis and the benchmark 30 s); whatever runs at the
# end of the budget is stopped with its children, and recorded as cut.
#
# What it writes (benchmarks/results/gpu_session/, sent back with benchmarks/results/):
#   progress.log   one JSON object per line (JSONL), appended as each notebook or command ends: stage, stream,
#                  label, notebook, status (ok | failed | cut | skipped), seconds, stage 1's learning bars
#   progress.md    the same as a table, a row per line
#   <stream>/      each stream's results.md/results.json and the notebooks' metrics.json, copied after each notebook
#   session.md     the plan at the start; at the end, the summary (also the last lines printed): bars, smoke tally,
#                  what was cut or not started
#   *.log          each stream's and command's output
# Record the times in the repository as what they are: "<card>" and "<card>, T4-emulated", never as a T4
# (scripts/update_readme_map.py labels the README's gpu column so from each results.json's environment).
#
# Dry run on a CPU (the same stages in the same order, seconds of work; results under /tmp/gpu_session_dry):
#   GPU_SESSION_DRY_RUN=1 bash benchmarks/gpu_session.sh                       # notebooks in the smoke profile
#   GPU_SESSION_DRY_RUN=1 GPU_SESSION_SECONDS=60 bash benchmarks/gpu_session.sh   # a budget that cuts it
# Knobs: GPU_SESSION_SECONDS (the budget itself), GPU_SESSION_MARGIN, STAGE1_NOTEBOOKS, SMOKE_NOTEBOOKS,
# SMOKE_SOLUTIONS (0/1), SMOKE_WORKERS, SMOKE_THREADS, STREAM_THREADS, STAGE2_AT, RESERVE, MIN_NOTEBOOK, MIN_COMMAND,
# GPU_SESSION_OUT, GPU_SESSION_REPORTS, GPU_SESSION_RESULTS (where the benchmarks write), PYTHON.
set -u
cd "$(dirname "$0")/.."
START=$(date +%s)
PY=${PYTHON:-python3}
DRY=${GPU_SESSION_DRY_RUN:-0}
MARGIN=${GPU_SESSION_MARGIN:-25}
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
T4_ENV="GPTFORALL_PRECISION=fp16 GPTFORALL_GPU_MEMORY_GB=15"

if [ "$DRY" = 1 ]; then  # the same stages on a CPU, sized to seconds
  OUT=${GPU_SESSION_OUT:-/tmp/gpu_session_dry/results}
  REPORTS=${GPU_SESSION_REPORTS:-/tmp/gpu_session_dry/reports}
  RESULTS=${GPU_SESSION_RESULTS:-$OUT/benchmarks}
  DEV=cpu
  PROFILE1=smoke
  STAGE1=${STAGE1_NOTEBOOKS:-04}
  SMOKE=${SMOKE_NOTEBOOKS:-00}
  SOLUTIONS=${SMOKE_SOLUTIONS:-0}
  THREADS=${STREAM_THREADS:-1}
  WORKERS=${SMOKE_WORKERS:-1}
  SMOKE_THREADS=${SMOKE_THREADS:-1}
  DIAG_ARGS="--skip-training --guard-steps 1 --guard-runs left-off --guard-batch 4"
  DIAG_FP16_ARGS="--skip-training --guard-steps 0"   # fp16 training on a CPU takes minutes a step
  BENCH_ARGS="--trimmed --steps 2 --examples 16 --batch 4 --methods lora --settings project"
  BUDGET=${GPU_SESSION_SECONDS:-900}
else
  OUT=${GPU_SESSION_OUT:-benchmarks/results/gpu_session}
  REPORTS=${GPU_SESSION_REPORTS:-reports}
  RESULTS=${GPU_SESSION_RESULTS:-benchmarks/results}
  DEV=cuda
  PROFILE1=gpu
  STAGE1=${STAGE1_NOTEBOOKS:-04 07}
  SMOKE=${SMOKE_NOTEBOOKS:-all}
  SOLUTIONS=${SMOKE_SOLUTIONS:-1}
  THREADS=${STREAM_THREADS:-5}     # stage 1: 2 streams x 5 threads
  WORKERS=${SMOKE_WORKERS:-3}
  SMOKE_THREADS=${SMOKE_THREADS:-2}  # stage 2: 3 workers x 2 threads, so 16 cores cover both when they overlap
  DIAG_ARGS="--guard-steps 20"
  DIAG_FP16_ARGS=$DIAG_ARGS
  BENCH_ARGS="--trimmed --steps 6 --examples 256"
  BUDGET=${GPU_SESSION_SECONDS:-}
fi

# Seconds since run.sh (gpu-check's last call) started: the oldest ancestor whose command line is .../run.sh.
run_sh_elapsed() {
  local pid=$PPID best="" i cmd stat start now ticks
  ticks=$(getconf CLK_TCK 2>/dev/null || echo 100)
  read -r now _ < /proc/uptime 2>/dev/null || return 0
  for i in 1 2 3 4 5 6 7 8; do
    [ -r "/proc/$pid/cmdline" ] && [ "$pid" -gt 1 ] || break
    cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline")
    read -r stat < "/proc/$pid/stat"
    stat=${stat##*) }
    if [[ "$cmd" == *part.*/run.sh* ]]; then
      start=$(echo "$stat" | awk '{print $20}')          # field 22 of stat: start time in clock ticks
      best=$(awk -v n="$now" -v s="$start" -v t="$ticks" 'BEGIN {printf "%d", n - s / t}')
    fi
    pid=$(echo "$stat" | awk '{print $2}')                # field 4: the parent
  done
  echo "$best"
}
if [ -z "$BUDGET" ]; then
  SETUP=$(run_sh_elapsed)
  BUDGET=$(( ${DEADLINE:-420} - ${SETUP:-80} - MARGIN ))
fi
STAGE2_AT=${STAGE2_AT:-$(( BUDGET / 2 ))}
RESERVE=${RESERVE:-120}
MIN_NOTEBOOK=${MIN_NOTEBOOK:-15}   # seconds left to start a notebook
MIN_COMMAND=${MIN_COMMAND:-30}     # ... the diagnosis or the benchmark

rm -rf "$OUT" "$REPORTS"/gpu-card "$REPORTS"/gpu-t4emulated "$REPORTS"/gpu-smoke-*   # this script's own folders
mkdir -p "$OUT" "$REPORTS" "$RESULTS"
elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }

# The ids of $1's child processes, read from /proc (no procps needed).
children() {
  local s line pid
  for s in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null < "$s" || continue      # a process may end while the list is read
    pid=${s#/proc/}; pid=${pid%/stat}
    line=${line##*) }; line=${line#* }
    [ "${line%% *}" = "$1" ] && echo "$pid"
  done
}
tree() { local c; echo "$1"; for c in $(children "$1"); do tree "$c"; done; }
# Stop a process and everything under it (Jupyter kernels start their own session, so a process group is not
# enough): collect the tree first, interrupt, then terminate and kill what is left.
stop_tree() {
  local pids; pids=$(tree "$1")
  kill -INT $pids 2>/dev/null; sleep 2
  kill -TERM $pids 2>/dev/null; sleep 2
  kill -KILL $pids 2>/dev/null
}
# run_cut LOG CMD...: CMD's output appended to LOG; stopped with its children when the budget is spent (status 124).
run_cut() {
  local log=$1 pid; shift
  echo "--- $(elapsed) s: $*" >> "$log"
  "$@" >> "$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(left)" -le 0 ]; then
      stop_tree "$pid"; wait "$pid" 2>/dev/null
      echo "--- $(elapsed) s: cut at the end of the budget" >> "$log"
      return 124
    fi
    sleep 0.5
  done
  wait "$pid"
}

# record STAGE STREAM KIND ITEM STATUS_CODE SECONDS [PROFILE REPORTS_DIR]: one line in progress.log and
# progress.md; for a notebook, its report's status and figures, stage 1's learning bars, and a copy of the stream's
# results into $OUT/STREAM; for a command, what its results file holds.
record() {
  "$PY" - "$OUT" "$@" <<'PY'
import json, shutil, sys, time
from pathlib import Path

out, stage, stream, kind, item, code, seconds = sys.argv[1:8]
profile, reports = (sys.argv[8:10] + ["", ""])[:2]
code, seconds = int(code), float(seconds)
row = {"time": time.strftime("%H:%M:%S"), "stage": int(stage), "stream": stream, "kind": kind, "item": item,
       "status": {0: "ok", 124: "cut", 999: "skipped"}.get(code, "failed"), "seconds": round(seconds, 1)}
sys.path[:0] = [".", "scripts"]
try:
    from update_readme_map import gpu_label
except Exception as e:  # the label is a courtesy; never lose the record for it
    gpu_label = lambda environment: f"label unavailable ({type(e).__name__})"


def bar_rows(entries: dict, entry: dict, profile: str) -> list:
    """The learning bars of this notebook as the course runner checked them (results.json "bars", written by
    gptforall_utils.bars through `python -m gptforall_utils.course run`); checked here the same way when the
    report has none."""
    if "bars" in entries:
        return [b for b in entries["bars"] if b["notebook"] == entry["notebook"][:2]]
    from gptforall_utils import bars
    checked = bars.check(entry["notebook"], profile, entry.get("metrics") if entry["status"] == "ok" else None)
    return [{"notebook": r.bar.notebook, "check": r.bar.check, "status": r.status, "values": r.values} for r in checked]


def fmt(values: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


if kind == "notebook" and reports:
    folder = Path(reports) / profile
    stem_prefix = item if "_" in item else f"{item}_"
    try:
        entries = json.loads((folder / "results.json").read_text())
        env = entries.get("environment", {})
        entry = next((n for n in entries["notebooks"] if n["notebook"].startswith(stem_prefix)
                      and n["notebook"].endswith("_solutions") == item.endswith("_solutions")), None)
    except (OSError, ValueError, KeyError):
        env, entry = {}, None
    row["profile"] = profile
    row["label"] = gpu_label(env) if env else ""
    if entry and code in (0, 1):
        row["notebook"] = entry["notebook"]
        row["status"] = entry["status"]
        row["seconds"] = entry["seconds"]
        if entry.get("error"):
            row["error"] = entry["error"][:300]
        checked = bar_rows(entries, entry, profile) if int(stage) == 1 else []
        if checked:  # the judged bars (issue 21) are among them: 04's LoRA >= 0.85 and falling loss, 07's > zero-shot
            row["bars"] = {"bar": f"{entry['notebook'][:2]}: {len(checked)} bars of gptforall_utils/bars.py",
                           "passed": all(b["status"] == "holds" for b in checked), "judged": profile == "gpu",
                           "figures": "; ".join(f"{b['check']}: {b['status']} ({fmt(b['values'])})" for b in checked)}
    dest = Path(out) / stream
    dest.mkdir(parents=True, exist_ok=True)
    for f in ("results.md", "results.json"):
        if (folder / f).is_file():
            shutil.copy(folder / f, dest / f)
    for m in folder.glob("*/metrics.json"):
        (dest / m.parent.name).mkdir(exist_ok=True)
        shutil.copy(m, dest / m.parent.name / "metrics.json")

if kind == "command" and profile:  # profile's place holds the command's results file
    try:
        res = json.loads(Path(profile).read_text())
    except (OSError, ValueError):
        res = {}
    if "runs" in res:
        row["figures"] = f"{len(res['runs'])} rows in {Path(profile).with_suffix('.md')}" + (
            "" if res.get("complete", True) else " (incomplete)")
    if res.get("guard"):
        row["figures"] = f"{res.get('machine')}, {res['guard'][0]['precision']}: first step FiniteGuard flags: " + "; ".join(
            f"{g['padding']} padding, checkpointing {'on' if g['checkpointing'] else 'off'}: "
            f"{g['first_flagged_step'] if g['flagged'] else 'none'}" for g in res["guard"])
with open(Path(out) / "progress.log", "a") as f:
    f.write(json.dumps(row) + "\n")
md = Path(out) / "progress.md"
try:
    with open(md, "x") as f:
        f.write("| time | stage | stream | label | item | status | s | bar or result |\n"
                "| --- | ---: | --- | --- | --- | --- | ---: | --- |\n")
except FileExistsError:
    pass
bar = row.get("bars")
bar_cell = row.get("figures", "") if not bar else (
    ("PASS" if bar["passed"] else "FAIL") + f": {bar['figures']}"
    + ("" if bar["judged"] else f" ({row.get('profile')} profile: not the judged run)"))
with open(md, "a") as f:
    f.write(f"| {row['time']} | {stage} | {stream} | {row.get('label', '')} | {row.get('notebook', item)} | "
            f"{row['status']}{': ' + row['error'] if row.get('error') else ''} | {row['seconds']} | {bar_cell} |\n")
print(f"[{row['time']}] stage {stage} {stream}: {row.get('notebook', item)} {row['status']} "
      f"({row['seconds']} s){' ' + bar_cell if bar_cell else ''}", flush=True)
PY
}

# notebook STAGE STREAM PROFILE ITEM [VAR=value ...]: one `course run` for one notebook (ITEM: its number, or a
# solutions stem), cut at the end of the budget, then recorded.
notebook() {
  local stage=$1 stream=$2 profile=$3 item=$4 t0 rc extra=""
  shift 4
  if [ "$(left)" -lt "$MIN_NOTEBOOK" ]; then record "$stage" "$stream" notebook "$item" 999 0; return; fi
  [[ "$item" == *_solutions ]] && extra=--solutions
  t0=$(date +%s)
  run_cut "$OUT/$stream.log" env "$@" OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" \
    "$PY" -m gptforall_utils.course run --profile "$profile" --only "$item" $extra --reports "$REPORTS/$stream"
  rc=$?
  record "$stage" "$stream" notebook "$item" "$rc" $(( $(date +%s) - t0 )) "$profile" "$REPORTS/$stream"
}

# command_stage STAGE NAME RESULT_JSON CMD...: a benchmark command, cut at the end of the budget, then recorded
# with what its results file holds.
command_stage() {
  local stage=$1 name=$2 result=$3 t0 rc
  shift 3
  if [ "$(left)" -lt "$MIN_COMMAND" ]; then record "$stage" "$name" command "$name" 999 0; return; fi
  t0=$(date +%s)
  run_cut "$OUT/$name.log" "$@"
  rc=$?
  record "$stage" "$name" command "$name" "$rc" $(( $(date +%s) - t0 )) "$result"
}

# A queue of smoke items, longest first (the README course map's smoke times), solutions after the notebooks.
QUEUE=$OUT/smoke.queue
smoke_queue() {
  "$PY" - "$SMOKE" "$SOLUTIONS" <<'PY'
import re, sys
from pathlib import Path

wanted, solutions = sys.argv[1].split(), sys.argv[2] == "1"
stems = sorted(p.stem for p in Path("notebooks").glob("[0-9][0-9]_*.ipynb"))
numbers = [s[:2] for s in stems if wanted in ([], ["all"]) or s[:2] in wanted]
seconds = {}
for line in Path("README.md").read_text().splitlines():
    cells = [c.strip() for c in line.split("|")]
    if len(cells) > 6 and re.fullmatch(r"\d\d", cells[1]):
        found = re.fullmatch(r"([0-9.]+) (s|min)", cells[-4])
        if found:
            seconds[cells[1]] = float(found.group(1)) * (60 if found.group(2) == "min" else 1)
numbers.sort(key=lambda n: -seconds.get(n, 0))
print("\n".join(numbers))
if solutions:
    sols = {p.stem[:2]: p.stem for p in Path("notebooks/solutions").glob("[0-9][0-9]_*_solutions.ipynb")}
    print("\n".join(sols[n] for n in numbers if n in sols))
PY
}
pop() {  # the next queue item, or nothing (a mkdir lock: workers take turns)
  local item
  until mkdir "$QUEUE.lock" 2>/dev/null; do sleep 0.2; done
  item=$(head -n 1 "$QUEUE"); sed -i 1d "$QUEUE"
  rmdir "$QUEUE.lock"
  echo "$item"
}
smoke_worker() {  # runs in its own subshell: THREADS is this worker's
  local w=$1 item
  THREADS=$SMOKE_THREADS
  while item=$(pop); [ -n "$item" ]; do
    if [[ "$item" == *_solutions ]] && [ "$(left)" -lt "$RESERVE" ]; then
      record 2 "gpu-smoke-$w" notebook "$item" 999 0; continue   # solutions only with time to spare
    fi
    notebook 2 "gpu-smoke-$w" smoke "$item"
  done
}

{
  echo "# GPU session $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import ipywidgets" 2>/dev/null || echo "note: ipywidgets is not installed here: tqdm warns 'IProgress \
not found' in the notebooks"
  echo
  echo "Budget: $BUDGET s of work (DEADLINE ${DEADLINE:-unset}, run.sh setup ${SETUP:-not read} s, margin $MARGIN s)."
  echo "Plan: 1. $STAGE1 in the $PROFILE1 profile, gpu-card and gpu-t4emulated ($T4_ENV) side by side, $THREADS"
  echo "threads each; 2. smoke ($SMOKE; solutions $SOLUTIONS while more than $RESERVE s are left), $WORKERS workers"
  echo "x $SMOKE_THREADS threads,"
  echo "from stage 1's end or $STAGE2_AT s; 3. sdpa_masked_rows.py $DIAG_ARGS, as the card is and fp16;"
  echo "4. bench_training.py $BENCH_ARGS. Progress: progress.md / progress.log (JSONL), one line per item as it ends."
  [ "$DRY" = 1 ] && echo "DRY RUN on $(nproc) CPU cores: the stages and their order as on a GPU, sizes cut to seconds."
} > "$OUT/session.md"
cat "$OUT/session.md"

# 1. The judged gpu-profile runs, as the card is and T4-emulated, side by side.
echo "stage 1: start at $(elapsed) s"
( for nb in $STAGE1; do notebook 1 gpu-card "$PROFILE1" "$nb"; done ) &
S1A=$!
( for nb in $STAGE1; do notebook 1 gpu-t4emulated "$PROFILE1" "$nb" $T4_ENV; done ) &
S1B=$!
while { kill -0 $S1A 2>/dev/null || kill -0 $S1B 2>/dev/null; } && [ "$(elapsed)" -lt "$STAGE2_AT" ]; do sleep 1; done
if kill -0 $S1A 2>/dev/null || kill -0 $S1B 2>/dev/null; then
  echo "stage 1: still running at $(elapsed) s; stage 2 starts alongside it"
else
  echo "stage 1: done at $(elapsed) s"
fi

# 2. Every notebook in smoke, as the card is (solutions while time is left).
echo "stage 2: start at $(elapsed) s"
smoke_queue > "$QUEUE"
cp "$QUEUE" "$OUT/smoke.planned"
S2=()
for w in $(seq 1 "$WORKERS"); do smoke_worker "$w" & S2+=($!); done
wait $S1A $S1B "${S2[@]}"
echo "stages 1 and 2: done at $(elapsed) s"

# 3. The diagnosis, as the card is and with fp16, side by side.
echo "stage 3: start at $(elapsed) s"
command_stage 3 sdpa_masked_rows "$RESULTS/sdpa_masked_rows_$DEV.json" env OMP_NUM_THREADS="$THREADS" \
  "$PY" benchmarks/sdpa_masked_rows.py $DIAG_ARGS --results-dir "$RESULTS" --name "sdpa_masked_rows_$DEV" &
D1=$!
command_stage 3 sdpa_masked_rows_fp16 "$RESULTS/sdpa_masked_rows_${DEV}_fp16.json" env GPTFORALL_PRECISION=fp16 \
  OMP_NUM_THREADS="$THREADS" "$PY" benchmarks/sdpa_masked_rows.py $DIAG_FP16_ARGS --results-dir "$RESULTS" \
  --name "sdpa_masked_rows_${DEV}_fp16" &
D2=$!
wait $D1 $D2

# 4. The trimmed training benchmark, alone on the card, one row at a time.
echo "stage 4: start at $(elapsed) s"
command_stage 4 bench_training "$RESULTS/training_$DEV.json" env OMP_NUM_THREADS=$(( THREADS * 2 )) \
  "$PY" benchmarks/bench_training.py $BENCH_ARGS --results-dir "$RESULTS"
echo "stage 4: done at $(elapsed) s"

# The summary: from progress.log, so it says what finished, what was cut and what never started.
nvidia-smi --query-gpu=memory.used --format=csv,noheader >> "$OUT/session.md" 2>/dev/null
"$PY" - "$OUT" "$(elapsed)" "$BUDGET" <<'PY' | tee -a "$OUT/session.md"
import json, sys
from pathlib import Path

out, spent, budget = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
rows = [json.loads(line) for line in (out / "progress.log").read_text().splitlines() if line.strip()]
print(f"\n## Summary ({spent} s of a {budget} s budget)\n")
for r in rows:
    if "bars" in r:
        b = r["bars"]
        print(f"- bar {b['bar']} [{r.get('label') or r['stream']}, {r.get('profile')} profile]: "
              f"{'PASS' if b['passed'] else 'FAIL'} ({b['figures']})")
for r in rows:
    if r["stage"] == 1 and "bars" not in r:
        print(f"- stage 1 {r['stream']} {r['item']}: {r['status']}{': ' + r['error'] if r.get('error') else ''}")
smoke = [r for r in rows if r["stage"] == 2]
ok = [r for r in smoke if r["status"] == "ok"]
print(f"- smoke: {len(ok)} ok of {len(smoke)} items"
      + "".join(f"; {r.get('notebook', r['item'])} {r['status']}" for r in smoke if r["status"] != "ok"))
for r in rows:
    if r["kind"] == "command":
        print(f"- stage {r['stage']} {r['item']}: {r['status']} ({r['seconds']} s){'; ' + r['figures'] if r.get('figures') else ''}")
planned = (out / "smoke.planned").read_text().split() if (out / "smoke.planned").exists() else []
done = {r["item"] for r in smoke}
never = [p for p in planned if p not in done]
name = lambda r: r["item"] if r["kind"] == "command" else f"{r['stream']} {r['item']}"
cut = [name(r) for r in rows if r["status"] == "cut"]
skipped = [name(r) for r in rows if r["status"] == "skipped"]
print(f"- cut at the end of the budget: {', '.join(cut) or 'nothing'}")
print(f"- not started (too little time left): {', '.join(skipped + never) or 'nothing'}")
PY
echo "total $(elapsed) s"
