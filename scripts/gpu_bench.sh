#!/usr/bin/env bash
# GRPO step time on a GPU with the rewards over HTTP vs in-process, paired inside one trainer
# (bench/bench_grpo_http.py, issue 19): the tiny Qwen2.5-VL, then a Qwen2.5-VL at 3B size
# (36 layers, hidden 2048, random bf16 weights built here, LoRA r16, 8 completions x 128 tokens).
# TRL generates with transformers: no vLLM, no network. Prints one summary block at the end;
# each run's full log and the summary stay in $OUT.
#   bash scripts/gpu_bench.sh                  # on the GPU machine, about 3 minutes
#   bash scripts/gpu_bench.sh --device cpu     # rehearsal on a CPU: fewer pairs, the 3B geometry shrunk
# Pairs per run: TINY_PAIRS (default 20 on cuda) and BIG_PAIRS (default 4 on cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICE=cuda
if [ "${1:-}" = "--device" ]; then DEVICE=${2:?--device needs cpu or cuda}; fi
OUT=${OUT:-$(mktemp -d -t gpubench.XXXXXX)}
mkdir -p "$OUT"
SUMMARY="$OUT/gpu_bench_summary.txt"
: >"$SUMMARY"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export REWARDSTACK_TINY_CACHE="$OUT/tiny" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# math_equiv starts a worker per CPU, twice (its HTTP process and in-process): a few are plenty here.
export MATH_EQUIV_WORKERS=${MATH_EQUIV_WORKERS:-4}

if [ "$DEVICE" = cuda ]; then
  TINY=(--pairs "${TINY_PAIRS:-20}" --warmup 2)
  BIG=(--pairs "${BIG_PAIRS:-4}" --warmup 1)
else
  TINY=(--pairs "${TINY_PAIRS:-2}" --warmup 1)
  BIG=(--pairs "${BIG_PAIRS:-1}" --warmup 1 --small)
fi

$PY - >>"$SUMMARY" <<'EOF'
import platform, torch, transformers, trl, peft
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
print(f"python {platform.python_version()}, torch {torch.__version__}, transformers "
      f"{transformers.__version__}, trl {trl.__version__}, peft {peft.__version__}; {gpu}\n")
EOF

run() {  # name, then the bench's arguments
  local name=$1 started=$SECONDS
  shift
  if ! $PY bench/bench_grpo_http.py --device "$DEVICE" --summary "$SUMMARY" \
      --steps-out "$OUT/$name.steps.jsonl" "$@" >"$OUT/$name.log" 2>&1; then
    echo "FAIL $name after $((SECONDS - started)) s; the last lines of $OUT/$name.log:" >>"$SUMMARY"
    tail -n 25 "$OUT/$name.log" >>"$SUMMARY"
    echo >>"$SUMMARY"
    return 1
  fi
}

status=0
run tiny --model tiny "${TINY[@]}" || status=1
run qwen2.5-vl-3b-size --model 3b "${BIG[@]}" || status=1
echo "===== rewardstack gpu_bench ($DEVICE, ${SECONDS} s; logs in $OUT) ====="
cat "$SUMMARY"
exit $status
