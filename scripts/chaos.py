"""Chaos run: triage a few hundred tickets on the real Postgres while killing workers with SIGKILL at
random moments and cutting every database session once; then check exactly-once.

    python scripts/chaos.py --tickets 300 --workers 2 --kills 12 --seed 7 \\
        --json reports/chaos/chaos.json --md reports/chaos/chaos.md

Workers are ``python scripts/chaos.py --worker ...`` processes running the real graph, checkpointer
(Postgres, pooled), audit store + outbox and per-ticket locks, with fast fakes for the models (the
scripted classifier / knowledge base / LLM of tests/graph/fakes_graph.py, with small random delays
so kills land inside nodes). Each worker walks all tickets in its own random order, runs them,
completes the review of every second paused ticket, and repeats passes until one pass finds every
ticket finished. The controller kills a random worker every few seconds (SIGKILL, then restarts it)
and once, half-way, simulates a Postgres restart by terminating every server session of the run's
schema (``pg_terminate_backend``; a test may not restart the machine's Postgres service itself).

Checked at the end, from the database: every ticket has exactly one decision (lost / duplicated);
each decision agrees with the ticket's final graph state (route, team, intent, reasons, status);
no review item is orphaned (every pending decision has a paused graph a human can resume, no
graph is stuck half-way, every completed review has exactly one action); the outbox is empty.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "graph")]

TEMPLATES = [
    "I want to cancel my order {n}, it has not shipped yet",
    "where is my parcel? I need to track order {n}",
    "please give me a refund for order {n}, it arrived broken",
    "this is a complaint about order {n}, nobody answers my emails",
    "hi, can you help me track my order {n} please",
    "cancel the purchase {n} I made yesterday",
]
CHANNELS = ["chat", "email", "api", "zendesk"]
RESTART_HOW = (
    "pg_terminate_backend on every session of the run's schema (application_name triage:<schema>), "
    "repeated for the window; the server itself was not restarted"
)


def make_tickets(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    tickets = []
    for i in range(n):
        text = rng.choice(TEMPLATES).format(n=10_000 + i)
        if i % 50 == 7:
            text = "Refund me now or my lawyer will sue your company, order " + str(10_000 + i)
        if i % 97 == 5:
            text = ""  # unreadable: straight to a human
        ticket: dict[str, Any] = {"id": f"c{i:04d}", "channel": CHANNELS[i % len(CHANNELS)], "text": text}
        if i % 3 == 0:
            ticket["subject"] = f"Order {10_000 + i}"
        tickets.append(ticket)
    return tickets


def settings_for(url: str, schema: str, workdir: Path) -> Any:
    from src.config import Settings

    return Settings(
        database_url=url,
        database_schema=schema,
        outbox_dir=workdir / "outbox",
        sqlite_path=workdir / "unused.db",
        checkpoint_sqlite_path=workdir / "unused-ckpt.db",
        database_pool_size=4,
        node_timeout_s=30,
        langsmith_tracing=False,
    )


def build_service(url: str, schema: str, workdir: Path) -> Any:
    """The real service wiring on Postgres, with the fast fakes of the graph tests for the models."""
    from fakes_graph import FakeClassifier, make_deps, neutral_analysis

    from src.audit.store import open_audit_store
    from src.graph.checkpoint import make_checkpointer
    from src.graph.service import TriageService
    from src.llm.providers.fake import FakeProvider

    class ChaosClassifier(FakeClassifier):
        """Probability fixed per text (auto / suggest / escalate mix) and a little latency."""

        def predict(self, texts: list[str], batch_size: int = 64) -> Any:
            time.sleep(random.uniform(0.0, 0.03))
            bucket = sum(map(ord, texts[0])) % 20 if texts else 0
            self.probability = 0.97 if bucket < 12 else (0.75 if bucket < 17 else 0.3)
            return super().predict(texts, batch_size)

    settings = settings_for(url, schema, workdir)
    provider = FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    deps = make_deps(workdir, classifier=ChaosClassifier(), provider=provider)
    deps.settings = settings
    deps.audit = open_audit_store(settings)
    analyze, draft = deps.analyze, deps.draft

    def slow_analyze(text: str, prov: Any) -> Any:
        time.sleep(random.uniform(0.0, 0.03))
        return analyze(text, prov)

    def slow_draft(*a: Any) -> Any:
        time.sleep(random.uniform(0.0, 0.03))
        return draft(*a)

    deps.analyze, deps.draft = slow_analyze, slow_draft
    return TriageService(deps, make_checkpointer(settings))


def wants_review(ticket_id: str) -> bool:
    """Every second paused ticket gets a reviewer's action during the run (the rest stay pending)."""
    return int(ticket_id.rsplit("c", 1)[-1]) % 2 == 0


# --- worker ------------------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> int:
    from src.graph.service import TicketBusy, TicketIn, ticket_id_for

    tickets = json.loads(Path(args.tickets_file).read_text())
    svc = build_service(args.database_url, args.schema, Path(args.workdir))
    (Path(args.workdir) / f"ready-{os.getpid()}").touch()  # the controller kills only started workers
    rng = random.Random(os.getpid())
    for n_pass in range(1, args.max_passes + 1):
        order = list(tickets)
        rng.shuffle(order)
        unfinished = recovered = busy = fallback = 0
        for t in order:
            tid = ticket_id_for(t["channel"], t["id"])
            out = svc.run(TicketIn(**t))
            recovered += bool(out.get("recovered"))
            busy += bool(out.get("busy"))
            fallback += any(str(f).startswith("graph:") for f in out.get("failures") or [])
            for event in ("recovered", "busy"):
                if out.get(event):
                    print(json.dumps({"event": event, "ticket": tid}), flush=True)
            if out.get("busy") or out.get("status") == "processing":
                unfinished += 1
                continue
            if out.get("status") == "pending_review" and wants_review(tid):
                try:
                    svc.resume(
                        tid, {"action": "accept", "by": f"chaos-{os.getpid()}", "action_id": f"rv-{tid}"}
                    )
                except TicketBusy:
                    unfinished += 1
        svc.deps.audit.flush()
        unfinished += svc.deps.audit.pending()
        report = {"pid": os.getpid(), "pass": n_pass, "unfinished": unfinished, "recovered": recovered,
                  "busy": busy, "fallback": fallback}  # fmt: skip
        print(json.dumps(report), flush=True)
        if unfinished == 0:
            svc.close()
            return 0
        time.sleep(0.5)
    svc.close()
    return 3


# --- controller --------------------------------------------------------------------------------


def terminate_sessions(url: str, schema: str, window_s: float = 0.0) -> int:
    """Kill every server session of this run's pools (what a Postgres restart does to a client), and
    keep killing new ones for ``window_s`` seconds (the restart's downtime: in-flight work fails)."""
    import psycopg

    killed = 0
    end = time.monotonic() + window_s
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (f"triage:{schema}",),
            ).fetchall()
            killed += len(rows)
            if time.monotonic() >= end:
                return killed
            time.sleep(0.05)


def start_worker(args: argparse.Namespace, schema: str, workdir: Path, tickets_file: Path, idx: int) -> Any:
    log = (workdir / f"worker{idx}.log").open("a")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--schema", schema,
           "--database-url", args.database_url, "--workdir", str(workdir),
           "--tickets-file", str(tickets_file)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def run_chaos(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    rng = random.Random(args.seed)
    schema = f"chaos_{uuid.uuid4().hex[:10]}"
    workdir = Path(args.workdir or ROOT / "data" / "chaos" / schema)
    workdir.mkdir(parents=True, exist_ok=True)
    tickets = make_tickets(args.tickets, args.seed)
    tickets_file = workdir / "tickets.json"
    tickets_file.write_text(json.dumps(tickets))
    started = time.monotonic()
    procs = {i: start_worker(args, schema, workdir, tickets_file, i) for i in range(args.workers)}
    kills: list[dict[str, Any]] = []
    restart_at = args.kills // 2
    restart: dict[str, Any] | None = None
    done: set[int] = set()
    bar = tqdm(total=args.kills, desc="kills", unit="kill", file=sys.stderr)
    deadline = started + args.max_seconds
    while len(done) < args.workers and time.monotonic() < deadline:
        time.sleep(rng.uniform(args.min_gap_s, args.max_gap_s) if len(kills) < args.kills else 0.5)
        for i, p in procs.items():
            if i not in done and p.poll() is not None:
                if p.returncode == 0:
                    done.add(i)
                else:  # killed, or gave up after max passes: start it again
                    procs[i] = start_worker(args, schema, workdir, tickets_file, i)
        if len(kills) < args.kills:
            alive = [
                i for i, p in procs.items() if p.poll() is None and (workdir / f"ready-{p.pid}").exists()
            ]
            if alive:
                victim = rng.choice(alive)
                os.kill(procs[victim].pid, signal.SIGKILL)
                procs[victim].wait()
                decided = count_decisions(args.database_url, schema)
                kills.append(
                    {"t_s": round(time.monotonic() - started, 2), "worker": victim, "decided_so_far": decided}
                )
                bar.update(1)
                procs[victim] = start_worker(args, schema, workdir, tickets_file, victim)
        if len(kills) >= restart_at and restart is None:
            t0 = round(time.monotonic() - started, 2)
            n = terminate_sessions(args.database_url, schema, args.restart_window_s)
            if n:  # retried until it cuts live sessions
                restart = {"t_s": t0, "window_s": args.restart_window_s, "sessions_terminated": n,
                           "decided_so_far": count_decisions(args.database_url, schema)}  # fmt: skip
    bar.close()
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait()
    elapsed = time.monotonic() - started
    result = verify(args.database_url, schema, workdir, tickets)
    events: dict[str, int] = {}
    for log in workdir.glob("worker*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith('{"event"'):
                kind = json.loads(line)["event"]
                events[kind] = events.get(kind, 0) + 1
    result["worker_events"] = {
        "recovered": events.get("recovered", 0),  # runs that finished a graph an earlier (killed) run began
        "busy": events.get("busy", 0),  # runs refused because another worker held the ticket
    }
    result.update({
        "config": {"tickets": args.tickets, "workers": args.workers, "kills_requested": args.kills,
                   "seed": args.seed, "schema": schema, "gap_s": [args.min_gap_s, args.max_gap_s]},
        "kills": kills,
        "postgres_restart": {**(restart or {}), "how": RESTART_HOW},
        "workers_finished_cleanly": len(done),
        "elapsed_s": round(elapsed, 1),
    })  # fmt: skip
    if not args.keep_schema:
        drop_schema(args.database_url, schema)
    return result


def count_decisions(url: str, schema: str) -> int:
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, options=f"-c search_path={schema}") as conn:
            return int(conn.execute("SELECT count(*) FROM decisions").fetchone()[0])
    except psycopg.Error:
        return -1


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def verify(url: str, schema: str, workdir: Path, tickets: list[dict[str, Any]]) -> dict[str, Any]:
    """The invariants, read back from the audit tables and the checkpoints."""
    from src.audit.outbox import Outbox
    from src.graph.service import ticket_id_for

    outbox = Outbox(workdir / "outbox")
    outbox_left, dead = len(outbox), len(outbox.dead())  # before anything here could flush it
    svc = build_service(url, schema, workdir)
    store = svc.deps.audit.inner
    counts = dict(store.db.fetchall("SELECT ticket_id, count(*) FROM decisions GROUP BY ticket_id"))
    actions = dict(store.db.fetchall("SELECT ticket_id, count(*) FROM human_actions GROUP BY ticket_id"))
    problems: dict[str, list[str]] = {"lost": [], "duplicated": [], "inconsistent": [], "orphaned": []}
    statuses: dict[str, int] = {}
    routes: dict[str, int] = {}
    fallbacks = 0
    for t in tickets:
        tid = ticket_id_for(t["channel"], t["id"])
        n = int(counts.get(tid, 0))
        if n == 0:
            problems["lost"].append(tid)
            continue
        if n > 1:
            problems["duplicated"].append(f"{tid}: {n} decisions")
        row = store.get_decision(tid)
        snap = svc.graph.get_state({"configurable": {"thread_id": tid}})
        state, interrupts = snap.values, getattr(snap, "interrupts", None)
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        routes[row["route"]] = routes.get(row["route"], 0) + 1
        fallbacks += any(r.startswith("graph:") for r in row.get("reasons", []))
        if not state:
            problems["orphaned"].append(f"{tid}: decision without a graph state")
            continue
        if snap.tasks and not interrupts:
            problems["orphaned"].append(f"{tid}: graph stopped half-way at {[t.name for t in snap.tasks]}")
        mismatch = [
            k for k, a, b in (
                ("route", row["route"], (state.get("score") or {}).get("route")),
                ("team", row.get("team"), (state.get("assignment") or {}).get("team")),
                ("intent", row.get("intent"), (state.get("prediction") or {}).get("label")),
                ("reasons", row.get("reasons"), (state.get("score") or {}).get("reasons")),
            ) if a != b
        ]  # fmt: skip
        graph_status = "pending_review" if interrupts else state.get("status")
        if graph_status != row["status"]:
            mismatch.append(f"status {row['status']} vs graph {graph_status}")
        if mismatch:
            seen = f"audit {row['route']}/{row['status']}, graph {(state.get('score') or {}).get('route')}"
            problems["inconsistent"].append(f"{tid}: {', '.join(mismatch)} ({seen}, next {snap.next})")
        n_actions = int(actions.get(tid, 0))
        if row["status"] == "completed" and n_actions != 1:
            problems["duplicated" if n_actions > 1 else "orphaned"].append(
                f"{tid}: {n_actions} reviewer actions"
            )
        if row["status"] == "pending_review" and (not interrupts or n_actions):
            problems["orphaned"].append(f"{tid}: pending without a resumable review item")
    extra = set(counts) - {ticket_id_for(t["channel"], t["id"]) for t in tickets}
    svc.close()
    return {
        "tickets": len(tickets),
        "decided": sum(1 for t in tickets if counts.get(ticket_id_for(t["channel"], t["id"]))),
        "lost": len(problems["lost"]),
        "duplicated": len(problems["duplicated"]),
        "inconsistent": len(problems["inconsistent"]),
        "orphaned_review_items": len(problems["orphaned"]),
        "unknown_decisions": len(extra),
        "outbox_pending": outbox_left,
        "outbox_dead_letters": dead,
        "statuses": statuses,
        "routes": routes,
        "fallback_escalations": fallbacks,
        "examples": {k: v[:10] for k, v in problems.items() if v},
    }


def markdown(result: dict[str, Any], meta: dict[str, Any]) -> str:
    ok = all(result[k] == 0 for k in ("lost", "duplicated", "inconsistent", "orphaned_review_items",
                                      "outbox_pending", "outbox_dead_letters"))  # fmt: skip
    cfg, restart = result["config"], result["postgres_restart"]
    lines = [
        "# Chaos run: exactly-once under SIGKILL and a Postgres session cut",
        "",
        f"Command: `{meta['command']}`  ",
        f"Commit {meta['commit']}, {meta['cpu']}, {meta['cores']} cores, Postgres {meta['postgres']}; "
        f"{result['elapsed_s']} s.",
        "",
        f"{cfg['tickets']} tickets, {cfg['workers']} worker processes, {len(result['kills'])} SIGKILLs at "
        f"random moments ({cfg['gap_s'][0]}-{cfg['gap_s'][1]} s apart), one simulated Postgres restart "
        f"({restart.get('sessions_terminated', 0)} sessions terminated during a "
        f"{restart.get('window_s')} s window from t={restart.get('t_s')} s)."
        " Models are fast fakes; graph, checkpointer, audit, "
        "outbox and locks are the real ones. Graph checkpoints: "
        f"`{meta.get('durability', 'auto')}` (`TRIAGE_GRAPH_DURABILITY`).",
        "",
        "| check | result |",
        "|---|---|",
        f"| tickets decided | {result['decided']} / {result['tickets']} |",
        f"| lost (no decision) | {result['lost']} |",
        f"| duplicated (decisions or reviewer actions) | {result['duplicated']} |",
        f"| inconsistent with the final graph state | {result['inconsistent']} |",
        f"| orphaned review items / stuck graphs | {result['orphaned_review_items']} |",
        f"| outbox left / dead letters | {result['outbox_pending']} / {result['outbox_dead_letters']} |",
        f"| **verdict** | **{'PASS' if ok else 'FAIL'}** |",
        "",
        f"Statuses: {result['statuses']}; routes: {result['routes']}; decisions escalated by the fallback "
        f"path (graph error, e.g. during the session cut): {result['fallback_escalations']}. "
        f"Runs that finished a graph a killed worker had started: {result['worker_events']['recovered']}; "
        f"runs refused because the other worker held the ticket: {result['worker_events']['busy']}.",
        "",
        "Honest limits: the Postgres 'restart' terminates every session of this run instead of restarting "
        "the server (shared machine); workers are killed only with SIGKILL, not by power loss (fsync "
        "behaviour of the disk is not exercised); the models are fakes, so model latency is compressed.",
    ]
    if result.get("examples"):
        lines += ["", "Examples of problems:", "```", json.dumps(result["examples"], indent=2), "```"]
    return "\n".join(lines) + "\n"


def meta_info(argv: list[str]) -> dict[str, Any]:
    import psycopg

    from src.system_info import cpu_model, git_commit

    try:
        with psycopg.connect(os.environ.get("CHAOS_PG", "postgresql://postgres@127.0.0.1:5432/test")) as c:
            pg = c.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error:
        pg = "unknown"
    command = "python scripts/chaos.py " + " ".join(argv)
    return {"command": command, "commit": git_commit(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "postgres": pg, "durability": os.environ.get("TRIAGE_GRAPH_DURABILITY", "auto")}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python scripts/chaos.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--tickets", type=int, default=300)
    p.add_argument("--workers", type=int, default=2, help="worker processes running at once")
    p.add_argument("--kills", type=int, default=12, help="SIGKILLs during the run")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--min-gap-s", type=float, default=1.0, help="shortest pause between kills")
    p.add_argument("--max-gap-s", type=float, default=4.0, help="longest pause between kills")
    p.add_argument("--max-seconds", type=float, default=1800, help="give up after this long")
    p.add_argument(
        "--restart-window-s",
        type=float,
        default=2.0,
        help="the simulated restart kills every session of the run for this long",
    )
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--json", type=Path, help="write the JSON report here")
    p.add_argument("--md", type=Path, help="write the Markdown report here")
    p.add_argument("--keep-schema", action="store_true", help="keep the run's Postgres schema for inspection")
    p.add_argument("--durability", choices=("auto", "sync", "exit"), default="auto",
                   help="graph checkpoints (TRIAGE_GRAPH_DURABILITY): the fake LLM makes auto = sync; exit "
                   "writes them only when a run pauses or ends")
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--schema", help=argparse.SUPPRESS)
    p.add_argument("--tickets-file", help=argparse.SUPPRESS)
    p.add_argument("--max-passes", type=int, default=30, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ["TRIAGE_GRAPH_DURABILITY"] = args.durability  # the worker processes inherit it
    if args.worker:
        return worker(args)
    result = run_chaos(args)
    meta = meta_info(argv)
    result["meta"] = meta
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(markdown(result, meta))
    print(text)
    bad = sum(result[k] for k in ("lost", "duplicated", "inconsistent", "orphaned_review_items",
                                  "outbox_pending", "outbox_dead_letters"))  # fmt: skip
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
