#!/usr/bin/env bash
# Every family's shipped recipe on one GPU, without network: tiny models of SmolVLM2, Gemma 3,
# InternVL3 and Qwen2.5-VL (trainer/model/tiny.py) are built locally, then each recipe trains 3 GRPO steps
# against local reward services with vLLM generating:
#   smolvlm2   vllm colocate
#   gemma3     vllm colocate, 4-bit (bitsandbytes NF4, as the recipe ships)
#   internvl3  vllm colocate
#   qwen2.5-vl vllm colocate under `accelerate launch` with DeepSpeed ZeRO-3 (1 process)
#   qwen2.5-vl vllm server (`trl vllm-serve` on the same GPU; TRL pushes weights to it over NCCL,
#              which may refuse two ranks on one device: the verdict line then shows NCCL's error)
# One verdict line per run (PASS/FAIL, seconds, and the last error line on failure); exit 1 if any
# failed. Needs the trainer image's packages (vllm, bitsandbytes, deepspeed). Aimed at < 8 minutes.
#   scripts/gpu_check.sh            # logs and recipes under a temporary folder (printed)
#   OUT=/tmp/gpucheck scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-$(mktemp -d -t gpucheck.XXXXXX)}
RUN_TIMEOUT=${RUN_TIMEOUT:-150}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export REWARDSTACK_TINY_CACHE="$OUT/tiny" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
echo "gpu_check: outputs in $OUT"

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done; }
trap cleanup EXIT

wait_http() {  # url seconds (python, not curl: the trainer image has no curl)
  for _ in $(seq "$2"); do
    $PY -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" \
      2>/dev/null && return 0
    sleep 1
  done
  return 1
}

$PY -c "from trainer.model.tiny import FAMILIES, tiny_model_dir
for f in FAMILIES: print('built', f, tiny_model_dir(family=f))" || { echo "FAIL build tiny models"; exit 1; }

$PY -m rewardstack serve regex_format vqa_accuracy --base-port 8600 >"$OUT/services.log" 2>&1 &
PIDS+=($!)
wait_http http://127.0.0.1:8600/readyz 60 && wait_http http://127.0.0.1:8602/readyz 60 \
  || { echo "FAIL reward services (see $OUT/services.log)"; exit 1; }

# recipe FAMILY MODE [SERVER_URL]: the shipped recipe via tests/trainer/familyrun.py's CPU
# overrides, then put back on the GPU: bf16, the shipped dtype/4-bit/optimizer, vLLM in MODE.
recipe() {
  $PY - "$1" "$2" "${3:-}" "$OUT" <<'EOF'
import sys
from pathlib import Path

import yaml

from tests.trainer.familyrun import RECIPES, FAMILY_RECIPES, family_recipe
from trainer.recipe import load_recipe

family, mode, server, out = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
urls = {"regex_format": "http://127.0.0.1:8600", "vqa_accuracy": "http://127.0.0.1:8602"}
shipped = load_recipe(RECIPES / FAMILY_RECIPES[family])
raw = family_recipe(family, out / f"{family}-{mode}", urls).model_dump(mode="json")
raw["model"].update(dtype="bfloat16", load_in_4bit=shipped.model.load_in_4bit)
raw["grpo"].update(max_steps=3, bf16=True, optim=shipped.grpo.get("optim", "adamw_torch"))
vllm = {"mode": mode, "gpu_memory_utilization": 0.25}
if server:
    vllm["server_url"] = server
if shipped.vllm.max_model_length:  # the tiny models' context is 2,048 or 4,096 tokens
    vllm["max_model_length"] = min(shipped.vllm.max_model_length, 2048)
raw["vllm"] = vllm
path = out / f"{family}-{mode}.yaml"
path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
print(path)
EOF
}

FAILED=0
verdict() {  # name log start
  local name=$1 log=$2 start=$3 steps
  steps=$(grep -c '"loss"' "$OUT/$name/metrics.jsonl" 2>/dev/null || echo 0)
  if [ "$steps" -ge 3 ]; then
    echo "PASS $name: $steps steps in $(( $(date +%s) - start )) s"
  else
    FAILED=1
    echo "FAIL $name after $(( $(date +%s) - start )) s: $(grep -E 'Error|error:' "$log" | tail -1 | cut -c1-200)"
  fi
}

run() {  # family mode [launcher...]
  local family=$1 mode=$2 name="$1-$2" start file
  shift 2
  start=$(date +%s)
  file=$(recipe "$family" "$mode" "${SERVER_URL:-}" | tail -1) || { echo "FAIL $name: recipe"; FAILED=1; return; }
  timeout "$RUN_TIMEOUT" "${@:-$PY}" -m rewardstack train "$file" >"$OUT/$name.log" 2>&1
  verdict "$name" "$OUT/$name.log" "$start"
}

run smolvlm2 colocate
run gemma3 colocate
run internvl3 colocate
run qwen2.5-vl colocate accelerate launch --num_processes 1 \
  --config_file trainer/recipes/accelerate/deepspeed_zero3.yaml

QWEN=$($PY -c "from trainer.model.tiny import tiny_model_dir; print(tiny_model_dir())")
start=$(date +%s)
trl vllm-serve --model "$QWEN" --port 8610 --gpu_memory_utilization 0.25 --max_model_len 2048 \
  --enforce_eager true >"$OUT/vllm-serve.log" 2>&1 &
PIDS+=($!)
if wait_http http://127.0.0.1:8610/health 120; then
  SERVER_URL=http://127.0.0.1:8610 run qwen2.5-vl server
else
  FAILED=1
  echo "FAIL qwen2.5-vl-server: trl vllm-serve not healthy after $(( $(date +%s) - start )) s" \
       "($(grep -E 'Error' "$OUT/vllm-serve.log" | tail -1 | cut -c1-200))"
fi
exit "$FAILED"
