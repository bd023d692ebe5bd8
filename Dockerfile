# Production image: the same offline-capable install as scripts/setup.sh.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md Makefile ./
COPY scripts ./scripts
COPY src ./src
COPY config ./config
COPY samples ./samples
RUN bash scripts/setup.sh
ENV PATH="/app/.venv/bin:${PATH}" TRIAGE_DATA_DIR=/app/data
VOLUME ["/app/data", "/app/models"]
CMD ["python", "-m", "src.graph.run", "--help"]
