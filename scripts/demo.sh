#!/usr/bin/env bash
# The main job on the embedded defaults: the committed classifier bundle (or train one, first run
# only), build the resolved-ticket knowledge base (first run only), then triage the sample tickets
# end to end (calibrated classifier + rules + analysis heads + Qdrant Edge + template drafts; the local
# GGUF LLM only where the heads are unsure or a rule fired; SQLite audit/checkpoints) and print one
# line per ticket: routine samples auto-resolve, risky ones go to a human. Offline when
# ../shared/data is beside the clone; otherwise the public Bitext dataset is fetched from the hub.
#   TRIAGE_DEMO_TICKETS=FILE   triage your own JSONL ({"id": ..., "text": ...} per line)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SHARED=../shared/data/bitext-customer-support
# Default: models/intent if you trained one, else the calibrated Bitext bundle committed in bundles/
# (src.config.default_model_dir), so a fresh clone triages without training.
MODEL_DIR="${TRIAGE_MODEL_DIR:-$($PY -c 'from src.config import get_settings as g; print(g().model_dir)')}"
TICKETS="${TRIAGE_DEMO_TICKETS:-samples/tickets.jsonl}"

if [[ ! -f "$MODEL_DIR/bundle.json" ]]; then
  if [[ -f "$SHARED/bitext_v11_text_intent.csv" ]]; then
    TRAIN_DATA="$SHARED/bitext_v11_text_intent.csv"
  else
    TRAIN_DATA="bitext/Bitext-customer-support-llm-chatbot-training-dataset"
  fi
  echo "== training the intent classifier on $TRAIN_DATA (first run only) =="
  # training ends by calibrating the thresholds on its own calibration split: the bundle is complete
  $PY -m src.classifier.train --data "$TRAIN_DATA" --out "$MODEL_DIR"
fi

N_TICKETS=$($PY -c "from src.retrieval.store import KnowledgeBase as K; print(K.from_settings().count())" 2>/dev/null || echo 0)
if [[ "$N_TICKETS" == "0" ]]; then
  echo "== building the resolved-ticket knowledge base (first run only) =="
  $PY -m src.retrieval.ingest
fi

echo "== triaging $TICKETS (full decisions: runs/demo/decisions.jsonl) =="
mkdir -p runs/demo
$PY -m src.graph.run --file "$TICKETS" | $PY scripts/demo_table.py --keep runs/demo/decisions.jsonl
