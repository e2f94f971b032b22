# The trainer image: CUDA, vLLM, TRL, DeepSpeed, the `trainer` package and the `rewardstack` command. It also runs the
# `generation` container (`trl vllm-serve`), so trainer and vLLM server share one torch.
#   docker build -f docker/trainer.Dockerfile -t rewardstack-trainer .
#   docker run --rm --gpus all -v $PWD/trainer/recipes:/app/recipes:ro rewardstack-trainer \
#       rewardstack train recipes/qwen2.5-vl-3b-think.yaml
#
# The trainer extra brings every family's processor dependency (num2words for SmolVLM2).
#
# torch/torchvision are the versions vLLM 0.33.0 pins (docker/vllm-overrides.txt says why they
# override pyproject's); transformers, TRL and PEFT are pyproject's pins, inside vLLM's range.
#
# The CUDA toolkit's major version must equal torch's (13.0 for the 2.14 wheels on PyPI):
# DeepSpeed refuses to JIT-build an op with a mismatched nvcc. The runtime keeps the toolkit and
# a compiler because three things compile at run time: DeepSpeed's CPU Adam (ZeRO offload),
# FlashInfer's kernels in vLLM, and Triton's launchers. Pinned by tag (no digest lookup here).
#
# BASE_IMAGE and PYTHON (the apt package of the interpreter) are build arguments so that the
# Python layers also build on a plain Debian/Python base, where no CUDA image can be pulled:
# scripts/stack_check.sh builds `--target resolve` (the requirements resolve, from wheel metadata
# only) on python:3.11-slim-bookworm with PYTHON=python3.11. Only the defaults make a trainer.
ARG BASE_IMAGE=nvidia/cuda:13.0.1-cudnn-devel-ubuntu24.04

FROM ${BASE_IMAGE} AS system
ARG PYTHON=python3.12
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends ${PYTHON} ${PYTHON}-venv ${PYTHON}-dev \
        build-essential ninja-build git \
 && rm -rf /var/lib/apt/lists/*

FROM system AS resolve
ARG PYTHON=python3.12
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 UV_NO_CACHE=1 DS_BUILD_OPS=0
RUN ${PYTHON} -m venv /opt/venv && /opt/venv/bin/pip install uv==0.13.8
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY services ./services
COPY trainer ./trainer
COPY rewardstack ./rewardstack
COPY integrations ./integrations
COPY docker/vllm-overrides.txt ./docker/
# The whole resolution, from wheel metadata only (no download of torch's or vLLM's wheels): a
# conflict between the extra's pins and vLLM's fails here, in seconds, on any base.
RUN uv pip install --dry-run --override docker/vllm-overrides.txt ".[vllm]"

FROM resolve AS build
RUN uv pip install --override docker/vllm-overrides.txt ".[vllm]"
# DeepSpeed's setup imports torch, so it builds against the torch installed above; its ops are
# JIT-built on first use (DS_BUILD_OPS=0), with the toolkit the runtime keeps.
RUN uv pip install setuptools wheel \
 && uv pip install --no-build-isolation --override docker/vllm-overrides.txt deepspeed==0.19.8 \
 && pip uninstall -y uv

FROM system AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/cache/huggingface TRITON_CACHE_DIR=/cache/triton
COPY --from=build /opt/venv /opt/venv
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app \
 && mkdir -p /app/recipes /app/outputs /app/data /cache \
 && chown -R app:app /app /cache
USER app
WORKDIR /app
CMD ["rewardstack", "--help"]
