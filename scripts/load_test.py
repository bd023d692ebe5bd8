"""Load test of a running triage service (bounded, loopback only): accept latency, throughput, errors,
lost tickets.

    python scripts/load_test.py --url http://127.0.0.1:8080 --clients 50 --seconds 60 --json OUT

``--clients`` concurrent clients each POST tickets to ``/v1/tickets`` back to back for ``--seconds``;
then every accepted ticket is polled until it has a decision (up to ``--drain-seconds``). Reported:
accepted tickets per second, accept latency p50/p95 (client side), decision latency p50/p95 (server
timestamps: accepted -> decided), decided per second, errors (any non-202 answer or transport
error) and lost tickets (accepted but never decided). With ``--audit-db`` (the service's SQLite file
or Postgres URL) it also checks that every accepted ticket has exactly one audit row. Writes OUT
(JSON) and OUT with ``.md``. The API key comes from ``--key`` or ``TRIAGE_LOAD_KEY``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import platform
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.system_info import cpu_model, git_commit  # noqa: E402

TEXTS = [
    "Please cancel my order, I placed it by mistake yesterday evening and no longer need it.",
    "Hello, could you help me track my package? I would like to know when it will be delivered.",
    "Hello, I would like to get a refund for the jacket I bought last week, it does not fit me.",
    "I forgot my password and cannot log in to my account, how do I reset it?",
    "Can I change the delivery address of the order I placed this morning?",
    "The item I received is damaged, the box was crushed and the screen is cracked.",
]
TARGETS = {"errors": 0, "lost": 0, "accept_p95_ms": 50.0, "decided_per_s": 200.0}
MAX_CLIENTS, MAX_SECONDS = 500, 600


def loopback_only(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"refusing to load-test {host!r}: only loopback addresses (127.0.0.0/8, ::1, localhost)")


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def client_loop(
    http: httpx.AsyncClient, run: str, n: int, deadline: float, out: dict[str, Any]
) -> None:
    i = 0
    while time.monotonic() < deadline:
        body = {"channel": "chat", "id": f"{run}-{n}-{i}", "text": TEXTS[(n + i) % len(TEXTS)]}
        start = time.perf_counter()
        try:
            resp = await http.post("/v1/tickets", json=body)
        except httpx.HTTPError as exc:
            out["errors"].append(f"{type(exc).__name__}: {exc}"[:200])
            i += 1
            continue
        ms = (time.perf_counter() - start) * 1000
        if resp.status_code == 202:
            out["accept_ms"].append(ms)
            out["accepted"].append(resp.json()["ticket_id"])
        else:
            out["errors"].append(f"HTTP {resp.status_code}: {resp.text[:200]}")
        i += 1


def queue_depth(metrics_text: str) -> int | None:
    """Undecided tickets according to the server (``triage_queue_depth``, queued + processing)."""
    total, seen = 0.0, False
    for line in metrics_text.splitlines():
        if line.startswith("triage_queue_depth{"):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return int(total) if seen else None


async def drain(
    http: httpx.AsyncClient, ids: list[str], seconds: float, stall_s: float, concurrency: int = 16
) -> dict[str, Any]:
    """Wait until the server's queue is empty (or stalls / the deadline passes), then read every
    accepted ticket once: its state and server-side timestamps."""
    deadline = time.monotonic() + seconds
    last_depth, last_change = None, time.monotonic()
    while time.monotonic() < deadline:
        depth = queue_depth((await http.get("/metrics")).text)
        if depth == 0:
            break
        if depth != last_depth:
            last_depth, last_change = depth, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            break
        await asyncio.sleep(2.0)
    decided: dict[str, dict[str, Any]] = {}
    pending: list[str] = []
    sem = asyncio.Semaphore(concurrency)

    async def check(tid: str) -> None:
        async with sem:
            try:
                resp = await http.get(f"/v1/tickets/{tid}")
            except httpx.HTTPError:
                pending.append(tid)
                return
        body = resp.json() if resp.status_code == 200 else {}
        if body.get("state") not in (None, "queued", "processing"):
            decided[tid] = body
        else:
            pending.append(tid)

    await asyncio.gather(*(check(t) for t in ids))
    return {
        "decided": decided,
        "lost": sorted(pending),
        "drain_s": round(seconds - (deadline - time.monotonic()), 1),
    }


def audit_rows(audit_db: str, ids: list[str], schema: str = "public") -> dict[str, int]:
    """Audit rows per ticket id, straight from the service's database."""
    from src.audit.db import PostgresDatabase, SqliteDatabase

    db = (
        PostgresDatabase(audit_db, schema=schema, migrate=False)
        if audit_db.startswith("postgres")
        else SqliteDatabase(audit_db, migrate=False)
    )
    try:
        counts: dict[str, int] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join([db.placeholder] * len(chunk))
            for tid, n in db.fetchall(
                f"SELECT ticket_id, count(*) FROM decisions WHERE ticket_id IN ({marks}) GROUP BY ticket_id",
                chunk,
            ):
                counts[str(tid)] = int(n)
        return counts
    finally:
        db.close()


def ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


async def run_load(args: argparse.Namespace, key: str) -> dict[str, Any]:
    run = f"load-{uuid.uuid4().hex[:8]}"
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    out: dict[str, Any] = {"accept_ms": [], "accepted": [], "errors": []}
    async with httpx.AsyncClient(
        base_url=args.url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=30
    ) as http:
        ready = await http.get("/readyz")
        start = time.monotonic()
        deadline = start + args.seconds
        await asyncio.gather(*(client_loop(http, run, n, deadline, out) for n in range(args.clients)))
        window_s = time.monotonic() - start
        print(
            f"load: {len(out['accepted'])} accepted, {len(out['errors'])} errors in {window_s:.1f}s",
            file=sys.stderr,
        )
        drained = await drain(http, out["accepted"], args.drain_seconds, args.stall_seconds)
        metrics = (await http.get("/metrics")).text
    decided = drained["decided"]
    dec_ms = [
        (ts(b["decided_at"]) - ts(b["accepted_at"])) * 1000
        for b in decided.values()
        if b.get("decided_at") and b.get("accepted_at")
    ]
    first = min((ts(b["accepted_at"]) for b in decided.values() if b.get("accepted_at")), default=None)
    last = max((ts(b["decided_at"]) for b in decided.values() if b.get("decided_at")), default=None)
    routes: dict[str, int] = {}
    for b in decided.values():
        r = (b.get("decision") or {}).get("route") or b["state"]
        routes[r] = routes.get(r, 0) + 1
    result: dict[str, Any] = {
        "accepted": len(out["accepted"]),
        "errors": len(out["errors"]),
        "error_samples": sorted(set(out["errors"]))[:10],
        "lost": len(drained["lost"]),
        "lost_samples": drained["lost"][:10],
        "drain_s": drained["drain_s"],
        "window_s": round(window_s, 2),
        "accepted_per_s": round(len(out["accepted"]) / window_s, 2) if window_s else None,
        "accept_ms": {
            "p50": pct(out["accept_ms"], 0.50),
            "p95": pct(out["accept_ms"], 0.95),
            "max": round(max(out["accept_ms"]), 2) if out["accept_ms"] else None,
        },
        "decision_ms": {"p50": pct(dec_ms, 0.50), "p95": pct(dec_ms, 0.95)},
        "decided": len(decided),
        "decided_per_s": round(len(decided) / (last - first), 2) if first and last and last > first else None,
        "routes": routes,
        "readyz_before": ready.json()
        if ready.headers.get("content-type", "").startswith("application/json")
        else ready.status_code,
        "server_metrics_sample": [
            ln
            for ln in metrics.splitlines()
            if ln.startswith(("triage_tickets_decided_total", "triage_queue_depth"))
        ][:20],
    }
    if args.audit_db:
        counts = audit_rows(args.audit_db, out["accepted"], args.audit_schema)
        result["audit_rows"] = {
            "checked": len(out["accepted"]),
            "exactly_one": sum(1 for t in out["accepted"] if counts.get(t) == 1),
            "missing": sum(1 for t in out["accepted"] if counts.get(t, 0) == 0),
            "duplicated": sum(1 for t in out["accepted"] if counts.get(t, 0) > 1),
        }
    return result


def verdict(result: dict[str, Any]) -> dict[str, bool | None]:
    p95 = result["accept_ms"]["p95"]
    rate = result["decided_per_s"]
    return {
        "errors == 0": result["errors"] == TARGETS["errors"],
        "lost == 0": result["lost"] == TARGETS["lost"],
        "accept p95 <= 50 ms": None if p95 is None else p95 <= TARGETS["accept_p95_ms"],
        "decided >= 200 tickets/s": None if rate is None else rate >= TARGETS["decided_per_s"],
    }


def markdown(report: dict[str, Any]) -> str:
    r, c = report["result"], report["config"]
    lines = [
        f"# Service load test ({report['created_at'][:10]})",
        "",
        f"`python scripts/load_test.py --url {c['url']} --clients {c['clients']} --seconds {c['seconds']}` "
        f"against commit `{report['commit']}` on {report['machine']['cpu']} "
        f"({report['machine']['cores']} cores); load average (1/5/15 min) before "
        f"{'/'.join(f'{x:.1f}' for x in report['machine']['loadavg_before'])}, after "
        f"{'/'.join(f'{x:.1f}' for x in report['machine']['loadavg_after'])}.",
        "",
        f"Server: {c.get('server') or 'not described (pass --server)'}",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| accepted | {r['accepted']} ({r['accepted_per_s']}/s over {r['window_s']} s) | |",
        f"| errors | {r['errors']} | 0 |",
        f"| lost (accepted, not decided after the queue drained, {r['drain_s']} s) | {r['lost']} | 0 |",
        f"| accept latency p50 / p95 / max | {r['accept_ms']['p50']} / {r['accept_ms']['p95']} / "
        f"{r['accept_ms']['max']} ms | p95 <= 50 ms |",
        f"| decision latency p50 / p95 (accepted -> decided) | {r['decision_ms']['p50']} / "
        f"{r['decision_ms']['p95']} ms | |",
        f"| decided per second | {r['decided_per_s']} | >= 200 (classifier-only fast path) |",
        f"| routes | {', '.join(f'{k}: {v}' for k, v in sorted(r['routes'].items()))} | |",
    ]
    if "audit_rows" in r:
        a = r["audit_rows"]
        lines.append(
            f"| audit rows: exactly one / missing / duplicated | {a['exactly_one']} / {a['missing']} / "
            f"{a['duplicated']} of {a['checked']} | all exactly one |"
        )
    lines += [
        "",
        "Targets: "
        + ", ".join(
            f"{k}: {'met' if v else 'NOT met' if v is not None else 'n/a'}"
            for k, v in report["verdict"].items()
        ),
    ]
    if r["error_samples"]:
        lines += ["", "Error samples:", *[f"- `{e}`" for e in r["error_samples"]]]
    if report.get("note"):
        lines += ["", report["note"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--url", default="http://127.0.0.1:8080", help="service base URL (loopback only)")
    ap.add_argument("--clients", type=int, default=50, help=f"concurrent clients (<= {MAX_CLIENTS})")
    ap.add_argument("--seconds", type=float, default=60.0, help=f"load window (<= {MAX_SECONDS})")
    ap.add_argument(
        "--drain-seconds", type=float, default=1800.0, help="wait at most this long for decisions"
    )
    ap.add_argument(
        "--stall-seconds", type=float, default=120.0, help="stop waiting when the queue stops moving"
    )
    ap.add_argument(
        "--json", type=Path, required=True, help="report path (.json; a .md is written beside it)"
    )
    ap.add_argument("--key", default=os.environ.get("TRIAGE_LOAD_KEY"), help="API key (or TRIAGE_LOAD_KEY)")
    ap.add_argument("--audit-db", help="service SQLite path or Postgres URL: check one audit row per ticket")
    ap.add_argument("--audit-schema", default="public", help="Postgres schema of the audit tables")
    ap.add_argument("--server", help="how the server was started (recorded in the report)")
    ap.add_argument("--note", help="free text recorded in the report (e.g. other load on the machine)")
    args = ap.parse_args(argv)
    loopback_only(args.url)
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.seconds <= MAX_SECONDS:
        ap.error(f"--clients must be 1..{MAX_CLIENTS} and --seconds 0..{MAX_SECONDS}")
    if not args.key:
        ap.error("an API key is needed: --key or TRIAGE_LOAD_KEY (python -m src.api.keys create --name load)")
    load_before = os.getloadavg()
    result = asyncio.run(run_load(args, args.key))
    report = {
        "created_at": datetime.now(timezone.utc).isoformat(),
        "commit": git_commit(),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "config": {"url": args.url, "clients": args.clients, "seconds": args.seconds, "server": args.server},
        "targets": TARGETS,
        "result": result,
        "note": args.note,
    }
    report["verdict"] = verdict(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    args.json.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
