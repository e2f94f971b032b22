# The clip_cider image: torch + open_clip. Two targets, one Dockerfile:
#   docker build -f docker/clip.Dockerfile --target cpu  -t rewardstack-clip:cpu .
#   docker build -f docker/clip.Dockerfile --target cuda -t rewardstack-clip:cuda .
#
# `cpu` installs torch's CPU-only wheels (about 200 MB instead of several GB of CUDA libraries).
# `cuda` installs the PyPI wheels, which carry the CUDA 13 user-space libraries (cuBLAS, cuDNN,
# NCCL) as nvidia-* packages; the driver comes from the host through the NVIDIA Container
# Toolkit. An nvidia/cuda base would only add a second copy of those libraries, so both targets
# start from the same slim Python. Base pinned by tag (see the root Dockerfile for why not digest).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY services ./services
COPY trainer ./trainer

FROM base AS build-cpu
# Same versions as the `clip` extra in pyproject.toml; `==2.14.1` also matches the local
# version `2.14.1+cpu`, so the install below keeps these wheels.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
 && pip install ".[clip]"

FROM base AS build-cuda
RUN pip install ".[clip]"

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/cache/huggingface CLIP_CIDER_CLIP_CACHE_DIR=/cache/open_clip
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app \
 && mkdir -p /cache && chown app:app /cache
USER app
WORKDIR /home/app
EXPOSE 8000
# Weights load (and on first start download) before /readyz turns 200: allow minutes.
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
CMD ["uvicorn", "services.clip_cider.main:app", "--host", "0.0.0.0", "--port", "8000"]

FROM runtime AS cuda
COPY --from=build-cuda /opt/venv /opt/venv

# Last, so that a plain `docker build -f docker/clip.Dockerfile .` gives the CPU image.
FROM runtime AS cpu
COPY --from=build-cpu /opt/venv /opt/venv
