"""Triage tickets from the command line; one JSON decision per ticket on stdout.

    python -m src.graph.run "I want to cancel my order"
    python -m src.graph.run --file samples/tickets.jsonl
    python -m src.graph.run --resume cli:TICKET --action edit --text "Hi, ..." --by ana

Runs on the embedded defaults (classifier bundle in TRIAGE_MODEL_DIR, local LLM where the heads are
unsure, Qdrant Edge, SQLite audit + checkpoints) unless Settings point elsewhere. Paused tickets
(suggest/escalate) keep their state in the checkpointer, so ``--resume`` works from a later process.

Ticket ids are ``CHANNEL:SOURCE_ID`` (the ``ticket_id`` in the output): ``--id 42`` with the default
channel ``cli`` is ticket ``cli:42``; without ``--id`` (or an ``id`` in the file) every ticket is new.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from src.audit.models import ACTIONS

EXIT_USAGE = 2


def read_tickets(path: Path) -> list[dict[str, Any]]:
    """JSONL (one object with at least ``text`` per line) or plain text (one ticket per line)."""
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text: {exc}") from exc
    tickets: list[dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if path.suffix.lower() in (".jsonl", ".json") or line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict) or "text" not in obj:
                raise ValueError(f"{path}:{n}: each line must be an object with a 'text' field")
            tickets.append(obj)
        else:
            tickets.append({"text": line})
    return tickets


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m src.graph.run",
        description="Triage support tickets (auto-resolve / suggest / escalate) or complete a paused review.",
    )
    p.add_argument("text", nargs="?", help="ticket text to triage")
    p.add_argument("--file", type=Path, help="JSONL of tickets: {id?, text, channel?, subject?} per line")
    p.add_argument("--id", help="source id for TEXT: the ticket is CHANNEL:ID (default: a fresh id)")
    p.add_argument("--channel", default="cli", help="channel of the tickets (default: cli)")
    p.add_argument("--resume", metavar="TICKET",
                   help="ticket id of a paused review to complete (CHANNEL:ID; a bare ID means --channel's)")
    p.add_argument("--action", choices=ACTIONS, help="review action for --resume")
    p.add_argument("--text", dest="action_text", help="edited draft (edit) or own reply (respond)")
    p.add_argument("--by", default="cli", help="who performed the review action")
    p.add_argument("--intent", help="corrected intent (exported as a training row)")
    p.add_argument("--team", help="target team for --action reassign")
    p.add_argument("--note", help="free-text note for the audit")
    p.add_argument("--pretty", action="store_true", help="indent the JSON output")
    return p


def _emit(obj: dict[str, Any], pretty: bool) -> None:
    print(json.dumps(obj, indent=2 if pretty else None, ensure_ascii=False, default=str), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    modes = sum(x is not None for x in (args.text, args.file, args.resume))
    if modes != 1:
        print("error: give exactly one of TEXT, --file FILE or --resume THREAD (see --help)", file=sys.stderr)
        return EXIT_USAGE
    if args.resume and not args.action:
        print("error: --resume needs --action " + "|".join(ACTIONS), file=sys.stderr)
        return EXIT_USAGE
    tickets: list[dict[str, Any]] = []
    if args.file is not None:
        try:
            tickets = read_tickets(args.file)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    from src.graph.deps import StartupError
    from src.graph.service import TriageService

    try:
        service = TriageService.from_settings()
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for note in service.deps.startup_notes:
        print(f"note: {note}", file=sys.stderr)
    try:
        return _dispatch(args, service, tickets)
    finally:
        _close_stores()


def _close_stores() -> None:
    """Close the embedded Qdrant client before interpreter shutdown (avoids noisy teardown errors)."""
    try:
        from src.retrieval.store import close_clients

        close_clients()
    except Exception:  # noqa: BLE001 - best effort at exit
        return


def _dispatch(args: argparse.Namespace, service: Any, tickets: list[dict[str, Any]]) -> int:
    from src.graph.service import ReviewError

    if args.resume:
        action = {"action": args.action, "text": args.action_text, "by": args.by, "intent": args.intent,
                  "team": args.team, "note": args.note}
        ticket_id = args.resume if ":" in args.resume else f"{args.channel}:{args.resume}"
        try:
            _emit(service.resume(ticket_id, action), args.pretty)
        except ReviewError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return 0

    if args.text is not None:
        tickets = [{"id": args.id, "text": args.text, "channel": args.channel}]
    from tqdm import tqdm

    for ticket in tqdm(tickets, desc="triage", unit="ticket", file=sys.stderr, disable=len(tickets) < 2):
        ticket.setdefault("channel", args.channel)
        _emit(service.run(ticket), args.pretty)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
