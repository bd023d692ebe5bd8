#!/usr/bin/env bash
# The main job on the embedded defaults: train the intent classifier (first run only), build the
# resolved-ticket knowledge base (first run only), then triage the sample tickets end to end
# (classifier + Qdrant local mode + local GGUF LLM + SQLite audit/checkpoints). Offline when
# ../shared/data is beside the clone; otherwise the public Bitext dataset is fetched from the hub.
#   TRIAGE_DEMO_TICKETS=FILE   triage your own JSONL ({"id": ..., "text": ...} per line)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SHARED=../shared/data/bitext-customer-support
MODEL_DIR="${TRIAGE_MODEL_DIR:-models/intent}"
TICKETS="${TRIAGE_DEMO_TICKETS:-samples/tickets.jsonl}"

if [[ ! -f "$MODEL_DIR/bundle.json" ]]; then
  if [[ -f "$SHARED/bitext_v11_text_intent.csv" ]]; then
    TRAIN_DATA="$SHARED/bitext_v11_text_intent.csv"
  else
    TRAIN_DATA="bitext/Bitext-customer-support-llm-chatbot-training-dataset"
  fi
  echo "== training the intent classifier on $TRAIN_DATA (first run only) =="
  $PY -m src.classifier.train --data "$TRAIN_DATA" --out "$MODEL_DIR"
  echo "== fitting auto-resolve thresholds on the held-out split =="
  $PY -m src.graph.calibrate --model "$MODEL_DIR" --report-dir "$MODEL_DIR/reports"
fi

N_TICKETS=$($PY -c "from src.retrieval.store import KnowledgeBase as K; print(K.from_settings().count())" 2>/dev/null || echo 0)
if [[ "$N_TICKETS" == "0" ]]; then
  echo "== building the resolved-ticket knowledge base (first run only) =="
  $PY -m src.retrieval.ingest
fi

echo "== triaging $TICKETS =="
$PY -m src.graph.run --file "$TICKETS"
