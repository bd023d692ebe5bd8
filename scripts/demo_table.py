#!/usr/bin/env python
"""Summarise ``python -m src.graph.run --file ...`` output (one decision JSON per line) as a table.

    python -m src.graph.run --file samples/tickets.jsonl | python scripts/demo_table.py

One row per ticket: route, intent, team, how many LLM calls it needed and the reason that decided
the route (the cap that held it back, or the calibrated score that let it through). The full JSON
is kept in ``--keep FILE`` if given.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def deciding_reason(decision: dict) -> str:
    """The reason a reader needs: the first cap that lowered the route, else the threshold line."""
    reasons = [str(r) for r in decision.get("reasons") or []]
    capped = [r for r in reasons if "(route capped at" in r]
    if capped:
        return re.sub(r" \(route capped at \w+\)$", "", capped[0])
    passed = [r for r in reasons if "> auto-resolve threshold" in r or "suggest threshold" in r]
    return passed[-1] if passed else (reasons[-1] if reasons else "")


def row(decision: dict) -> str:
    calls = (decision.get("usage") or {}).get("calls") or []
    steps = ",".join(str(c.get("step")) for c in calls) or "none"
    intent = decision.get("intent") or "-"
    return (
        f"{str(decision.get('ticket_id', '?'))[:18]:18s} {decision.get('route', '?'):12s} {intent[:24]:24s} "
        f"{str(decision.get('team') or '-')[:14]:14s} {steps[:16]:16s} {deciding_reason(decision)[:90]}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keep", type=Path, help="also write the raw decisions (JSONL) here")
    args = p.parse_args(argv)
    decisions = []
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("{"):
            try:
                decisions.append(json.loads(line))
            except json.JSONDecodeError:
                print(line)
        elif line:
            print(line)
    if args.keep:
        args.keep.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in decisions), "utf-8")
    print(f"{'ticket':18s} {'route':12s} {'intent':24s} {'team':14s} {'LLM calls':16s} why")
    for d in decisions:
        print(row(d))
    routes = [d.get("route") for d in decisions]
    print(
        f"\n{routes.count('auto_resolve')} auto-resolved, {routes.count('suggest')} to an agent (suggest), "
        f"{routes.count('escalate')} escalated (of {len(decisions)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
