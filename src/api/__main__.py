"""``python -m src.api --host 127.0.0.1 --port 8080``: the API (and, without a broker, its workers)."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m src.api",
        description="Run the triage API (FastAPI + uvicorn; OpenAPI at /docs). Without TRIAGE_BROKER_URL "
        "tickets are processed by in-process worker threads; with it, by `python -m src.api.worker`.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--access-log", action="store_true", help="log every request (off: faster under load)")
    p.add_argument(
        "--keep-alive-s",
        type=float,
        default=30.0,
        help="close an idle keep-alive connection after this (default 30; uvicorn's 5 s can fire while a "
        "busy event loop has the client's next request unread, which the client sees as a reset)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import uvicorn

    from src.api.app import create_app
    from src.config import get_settings

    settings = get_settings()
    mode = (
        f"broker {settings.broker_url.split('@')[-1]}"
        if settings.broker_url
        else (f"embedded ({settings.service_workers} worker threads)")
    )
    print(f"triage-api: http://{args.host}:{args.port} (docs at /docs), queue: {mode}", file=sys.stderr)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=args.keep_alive_s,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
