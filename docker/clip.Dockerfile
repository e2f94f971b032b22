# The clip_cider image: torch + open_clip. One build, no CUDA stage: where torch comes from is the
# build argument TORCH_INDEX_URL, so no builder (BuildKit or the legacy one, which builds every
# stage up to the target) ever downloads CUDA wheels for a CPU image.
#   docker build -f docker/clip.Dockerfile -t rewardstack-clip:cpu .                  # CPU wheels
#   docker build -f docker/clip.Dockerfile --build-arg TORCH_INDEX_URL=https://pypi.org/simple \
#       -t rewardstack-clip:cuda .                                                     # PyPI: CUDA 13
#
# TORCH_INDEX_URL (default: PyTorch's CPU index, about 200 MB of torch): a CPU-only build where
# that index is reachable. Where it is not (a mirror, a firewall), the build says so and falls
# back to PyPI, which always works but whose torch wheels carry the CUDA 13 user-space libraries
# (cuBLAS, cuDNN, NCCL as nvidia-* packages): the image is several GB larger (docs/stack.md has
# the sizes). Empty or PyPI's URL: PyPI directly, which is what the GPU image wants; the driver
# comes from the host through the NVIDIA Container Toolkit, so an nvidia/cuda base would only add
# a second copy of those libraries. Another index (a CUDA one such as .../whl/cu130, or a
# mirror) works the same way. Base pinned by tag (see the root Dockerfile for why not digest).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# torch first, in its own layer: the largest download, unchanged when the code changes. Same
# versions as the `clip` extra in pyproject.toml; `==2.14.1` also matches the CPU index's local
# version `2.14.1+cpu`, so the install of the extra below keeps these wheels.
RUN case "$TORCH_INDEX_URL" in ""|https://pypi.org/simple|https://pypi.org/simple/) false ;; esac \
 && pip install --retries=1 --timeout=20 --index-url "$TORCH_INDEX_URL" torch==2.14.1 torchvision==0.29.1 \
 || { echo "torch: from PyPI (TORCH_INDEX_URL='$TORCH_INDEX_URL' is empty, PyPI or failed): CUDA 13 wheels, several GB" >&2 \
 && pip install torch==2.14.1 torchvision==0.29.1 ; }
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY services ./services
COPY trainer ./trainer
COPY rewardstack ./rewardstack
RUN pip install ".[clip]"

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/cache/huggingface CLIP_CIDER_CLIP_CACHE_DIR=/cache/open_clip
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app \
 && mkdir -p /cache && chown app:app /cache
COPY --from=build /opt/venv /opt/venv
USER app
WORKDIR /home/app
EXPOSE 8000
# Weights load (and on first start download) before /readyz turns 200: allow minutes.
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
CMD ["uvicorn", "services.clip_cider.main:app", "--host", "0.0.0.0", "--port", "8000"]
