# syntax=docker/dockerfile:1
# Multi-stage image for the service: the build stage compiles llama-cpp-python (portable, no
# -march=native) and installs the project into /app/.venv; the runtime stage carries only that venv
# and the sources, runs as an unprivileged user, and starts the API (or, with another command, a
# worker: `python -m src.api.worker`). Models are mounted at /app/models (see docker-compose.yml).
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md Makefile ./
COPY scripts ./scripts
COPY src ./src
COPY config ./config
COPY samples ./samples
RUN bash scripts/setup.sh && find /app/.venv -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim AS runtime
# libgomp1: llama.cpp's OpenMP runtime; nothing else from the build toolchain is kept.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin triage
WORKDIR /app
COPY --from=build --chown=triage:triage /app /app
RUN mkdir -p /app/data /app/models && chown triage:triage /app/data /app/models
ENV PATH="/app/.venv/bin:${PATH}" TRIAGE_DATA_DIR=/app/data PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
USER triage
EXPOSE 8080
VOLUME ["/app/data"]
HEALTHCHECK --interval=10s --timeout=5s --retries=5 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
CMD ["python", "-m", "src.api", "--host", "0.0.0.0", "--port", "8080"]
