#!/usr/bin/env bash
# clip_cider on one GPU against the same host's CPU (issue 23), without network: one summary block.
# Random ViT-B-32 weights (a forward pass costs what it costs with real ones); GRPO-shaped requests
# of 16 new 640x480 JPEGs x 8 completions served as the service serves them minus the socket (JSON
# parsed and validated, scored, answer dumped), one and four in flight, the devices alternating in
# blocks; then decode + preprocess per image against the naive pipeline. Aimed at < 2 minutes.
#   scripts/gpu_clip_bench.sh                     # PYTHON=python3; extra arguments go to the bench
#   DEVICES=cpu scripts/gpu_clip_bench.sh --requests 1 --rounds 1   # a rehearsal on a CPU-only box
#
# Needs no FastAPI, uvicorn, re2, rapidfuzz, rich or pycocoevalcap. Beyond torch (CUDA),
# torchvision, pillow, numpy, timm, huggingface_hub, regex, safetensors, tqdm and
# prometheus_client, it imports these pure-Python packages (wheels on PYTHONPATH will do):
#   open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 pydantic-settings==2.16.3 python-dotenv==1.2.4
#   typing-inspection==0.4.5, and pydantic==2.14.4 (+ pydantic-core 2.50.5, annotated-types 0.8.0)
#   where the host has no pydantic 2.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICES=${DEVICES:-cpu,cuda}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# Everything the bench imports, checked first: one line naming what is missing, not a traceback.
$PY - "$DEVICES" <<'PYEOF' || exit 2
import importlib, sys
need = {"torch": "torch", "torchvision": "torchvision", "PIL": "pillow", "numpy": "numpy",
        "timm": "timm", "huggingface_hub": "huggingface_hub", "regex": "regex",
        "safetensors": "safetensors", "tqdm": "tqdm", "prometheus_client": "prometheus_client",
        "open_clip": "open_clip_torch==3.3.0", "ftfy": "ftfy==6.3.1", "wcwidth": "wcwidth==0.9.4",
        "pydantic": "pydantic==2.14.4", "pydantic_settings": "pydantic-settings==2.16.3",
        "dotenv": "python-dotenv==1.2.4", "typing_inspection": "typing-inspection==0.4.5"}
missing = []
for module, wheel in need.items():
    try:
        importlib.import_module(module)
    except Exception as exc:
        missing.append(f"{wheel} ({type(exc).__name__}: {exc})")
if missing:
    sys.exit("gpu_clip_bench: cannot import " + "; ".join(missing))
import torch
if "cuda" in sys.argv[1] and not torch.cuda.is_available():
    sys.exit(f"gpu_clip_bench: torch {torch.__version__} sees no CUDA device")
PYEOF

exec timeout "${TIMEOUT:-170}" "$PY" bench/bench_clip_cider.py --device "$DEVICES" --tables stages,decode "$@"
