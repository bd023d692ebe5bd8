"""``python -m src.api.keys create --name NAME | list | revoke KEY_ID``: API keys for the service.

Keys live in the audit database (SQLite by default, Postgres with TRIAGE_DATABASE_URL), hashed
with the server pepper (src/api/auth.py). ``create`` prints the key once, alone on its last line.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from src.api.auth import generate_key, hash_secret, load_pepper
from src.api.store import ApiStore
from src.audit.db import open_database
from src.config import Settings, get_settings

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m src.api.keys", description="Manage API keys of the triage service."
    )
    sub = p.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a key; it is printed once, alone on the last line")
    create.add_argument("--name", required=True, help="who uses the key (recorded as the actor of reviews)")
    sub.add_parser("list", help="list keys (ids, names, created, revoked; never the keys)")
    revoke = sub.add_parser("revoke", help="revoke a key by its id (the part after trg_)")
    revoke.add_argument("key_id")
    return p


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def run(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings or get_settings()
    db = open_database(settings)
    try:
        store = ApiStore(db)
        if args.command == "create":
            name = args.name.strip()
            if not name or len(name) > 100:
                print("error: --name must be 1-100 characters", file=sys.stderr)
                return EXIT_USAGE
            key = generate_key()
            store.add_key(
                key.key_id, name, key.salt, hash_secret(key.secret, key.salt, load_pepper(settings))
            )
            print(
                f"created key {key.key_id} for {name!r} in {db.description}; it is shown only once:",
                file=sys.stderr,
            )
            print(key.full)
        elif args.command == "list":
            print(f"{'key_id':<14} {'created':<21} {'revoked':<21} name")
            for row in store.list_keys():
                print(f"{row.key_id:<14} {_when(row.created_at):<21} {_when(row.revoked_at):<21} {row.name}")
        elif args.command == "revoke":
            if not store.revoke_key(args.key_id.strip()):
                print(f"error: no active key {args.key_id!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}")
        return 0
    finally:
        db.close()


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
