"""The triage service: HTTP intake, queue workers, helpdesk webhooks with write-back (docs/service.md).

python -m src.api --host 127.0.0.1 --port 8080      API (+ in-process workers unless TRIAGE_BROKER_URL)
python -m src.api.worker                            a queue worker (with TRIAGE_BROKER_URL)
python -m src.api.keys create --name NAME           a new API key (printed once)
"""
