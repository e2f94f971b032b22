# The slim services image: regex_format, math_equiv, vqa_accuracy and llm_judge. No torch.
#   docker build -t rewardstack-services .
#   docker run --rm -p 127.0.0.1:8100:8000 rewardstack-services            # regex_format
#   docker run --rm rewardstack-services uvicorn services.math_equiv.main:app --host 0.0.0.0 --port 8000
#
# Base images are pinned by tag, not digest: a digest cannot be looked up where this file was
# written. Pin one with `docker buildx imagetools inspect python:3.11-slim-bookworm` when you
# mirror the image; the tag alone already fixes Python's minor version and the Debian release.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what the wheel is built from; tests, docs and recipes stay out of the image.
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY services ./services
COPY trainer ./trainer
COPY rewardstack ./rewardstack
# `services` is the framework plus regex_format, vqa_accuracy and llm_judge; `math` adds
# math-verify for math_equiv. A non-editable install: the image needs no source tree.
RUN pip install ".[services,math,judge]"

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
USER app
WORKDIR /home/app
EXPOSE 8000
# Images may lack curl: the healthcheck is the same Python one-liner compose uses.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
CMD ["uvicorn", "services.regex_format.main:app", "--host", "0.0.0.0", "--port", "8000"]
