#!/usr/bin/env bash
# One GPU session for issue 11 ("the GPU path, proven"), as the last call of ../shared/tools/gpu-check:
#
#   ../shared/tools/gpu-check prepare        # on the CPU machine, in the repository root; prints the calls
#   ...make the printed calls; the last one as:
#   DEADLINE=560 GPU_CHECK='bash benchmarks/gpu_session.sh' bash .device/part.N/run.sh
#
# What it runs, in this order, within DEADLINE (run.sh spends ~80 s on setup first; this script stops its own
# work GPU_SESSION_SECONDS after it starts, default DEADLINE - 100, so that run.sh can still pack the results):
#   0. benchmarks/sdpa_masked_rows.py, as the card is and with fp16 (seconds): does this card's attention give
#      NaN outputs or gradients for fully masked (left-padding) query rows, per SDPA backend and dtype, and does
#      one LoRA step of the course's setup get NaN adapter gradients with left vs right padding, with and without
#      activation checkpointing? (The diagnosis of the collapse; results/sdpa_masked_rows_cuda*.{md,json}.)
#   1. benchmarks/bench_training.py --examples 512, alone on the card (throughput needs the card to itself):
#      writes benchmarks/results/training_cuda.{md,json} (LoRA and full fine-tuning at batch 8 and at the batch
#      the course picks on this card; ratios vs TRL and Trainer defaults; share of the measured bf16 matmul peak).
#   2. three streams side by side, each with its own CPU threads and --reports folder:
#      - gpu-card:       the training notebooks 04 07 03 05 in the gpu profile, as the card is;
#      - gpu-t4emulated: the same with GPTFORALL_PRECISION=fp16 GPTFORALL_GPU_MEMORY_GB=15 (a T4's precision and
#                        memory on this card: not a T4; its speed is this card's);
#      - smoke:          every notebook and solution in the smoke profile.
#      One `course run` per notebook, so a stream cut by the deadline still leaves a report of what finished.
#   3. collects each stream's results.md/results.json and logs into benchmarks/results/gpu_session/ (run.sh sends
#      benchmarks/results/ and reports/ back). Record them in the repository as what they are: "<card>" and
#      "<card>, T4-emulated", never as a T4.
set -u
cd "$(dirname "$0")/.."
START=$(date +%s)
BUDGET=${GPU_SESSION_SECONDS:-$(( ${DEADLINE:-420} - 100 ))}
PY=${PYTHON:-python3}
THREADS=${STREAM_THREADS:-4}
OUT=benchmarks/results/gpu_session
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT" reports

left() { echo $(( BUDGET - ($(date +%s) - START) )); }
# Run a command with what is left of the budget; skip it when less than 20 s are left.
in_time() {
  local t; t=$(left)
  if [ "$t" -lt 20 ]; then echo "skipped (budget spent): $*"; return 0; fi
  timeout --signal=INT --kill-after=15 "$t" "$@"
}
course() { in_time "$PY" -m gptforall_utils.course run "$@"; }

{
  echo "# GPU session $(date -u '+%Y-%m-%d %H:%M UTC')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  "$PY" -c "import torch, transformers, peft, trl; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__, 'peft', peft.__version__, 'trl', trl.__version__)"
  "$PY" -c "import ipywidgets" 2>/dev/null || echo "note: ipywidgets is not installed here: tqdm warns 'IProgress \
not found' in the notebooks (stage ipywidgets, widgetsnbextension and jupyterlab_widgets with the other packages)"
  echo "budget: $BUDGET s; $THREADS CPU threads per stream"
} > "$OUT/session.txt"
cat "$OUT/session.txt"

# 0. The diagnosis: fully masked attention rows on this card.
in_time env OMP_NUM_THREADS="$THREADS" "$PY" benchmarks/sdpa_masked_rows.py > "$OUT/sdpa_masked_rows.log" 2>&1
in_time env GPTFORALL_PRECISION=fp16 OMP_NUM_THREADS="$THREADS" "$PY" benchmarks/sdpa_masked_rows.py \
  --name sdpa_masked_rows_cuda_fp16 > "$OUT/sdpa_masked_rows_fp16.log" 2>&1
echo "diagnosis: done after $(( $(date +%s) - START )) s"

# 1. The benchmark, alone on the card.
in_time env OMP_NUM_THREADS="$THREADS" "$PY" benchmarks/bench_training.py --examples 512 > "$OUT/bench_training.log" 2>&1
echo "benchmark: exit $? after $(( $(date +%s) - START )) s"
# The two-stacks question on long answers (the run above covers one-token answers, trl_course included).
in_time env OMP_NUM_THREADS="$THREADS" "$PY" benchmarks/bench_training.py --examples 256 --task instructions \
  --settings project,trl_course --name two_stacks_instructions_cuda > "$OUT/bench_two_stacks.log" 2>&1
echo "two stacks: exit $? after $(( $(date +%s) - START )) s"

# 2. Three streams side by side.
TRAINING="04 07 03 05"
SMOKE=$(ls notebooks/[0-9][0-9]_*.ipynb | sed 's|notebooks/\([0-9][0-9]\)_.*|\1|')
(
  export OMP_NUM_THREADS=$THREADS
  for nb in $TRAINING; do course --profile gpu --only "$nb" --reports reports/gpu-card; done
) > "$OUT/gpu-card.log" 2>&1 &
(
  export OMP_NUM_THREADS=$THREADS GPTFORALL_PRECISION=fp16 GPTFORALL_GPU_MEMORY_GB=15
  for nb in $TRAINING; do course --profile gpu --only "$nb" --reports reports/gpu-t4emulated; done
) > "$OUT/gpu-t4emulated.log" 2>&1 &
(
  export OMP_NUM_THREADS=$THREADS
  for nb in $SMOKE; do course --profile smoke --solutions --only "$nb" --reports reports/gpu-smoke; done
) > "$OUT/smoke.log" 2>&1 &
wait
echo "streams done after $(( $(date +%s) - START )) s"

# 3. Collect.
for stream in gpu-card gpu-t4emulated gpu-smoke; do
  for f in reports/"$stream"/*/results.md reports/"$stream"/*/results.json; do
    [ -f "$f" ] && mkdir -p "$OUT/$stream" && cp "$f" "$OUT/$stream/"
  done
done
nvidia-smi --query-gpu=memory.used --format=csv >> "$OUT/session.txt" 2>&1
grep -h -E "^(ok|FAILED)" "$OUT"/*.log | tee -a "$OUT/session.txt"
echo "total $(( $(date +%s) - START )) s" | tee -a "$OUT/session.txt"
