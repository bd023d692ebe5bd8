"""#10 items 11, 12, 15, 17, 18: every accepted ticket ends in exactly one decision that agrees with
what happened — across crashes at every node boundary, a broken graph, concurrent runs and resumes,
an audit failure, and tickets that carry (or lack) a source id.

"Crash" here is a ``BaseException`` raised at a node boundary (nothing in the graph catches it, as
with a killed process: the step's checkpoint is never written), plus one real ``os._exit`` in a
subprocess. A "restart" is a new ``TriageService`` on the same SQLite audit + checkpoint files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fakes_graph import FakeClassifier, make_deps

from src.graph import builder
from src.graph.checkpoint import sqlite_checkpointer
from src.graph.service import TicketBusy, TicketIn, TriageService, ticket_id_for
from src.llm.providers.fake import FakeProvider

CLEAN = "I want to cancel my order please, it has not shipped yet"
NODES = ["preprocess", "classify", "analyze", "retrieve", "draft", "score", "route", "audit", "review"]


class Crash(BaseException):
    """The process dying at this point (not an Exception: no node or service code catches it)."""


def _service(tmp_path: Path, **kw: Any) -> TriageService:
    """A service on files under tmp_path: calling it twice is a restart of the same deployment."""
    kw.setdefault("classifier", FakeClassifier(probability=0.75))  # suggest: pauses for review
    deps = make_deps(tmp_path, **kw)
    return TriageService(deps, sqlite_checkpointer(tmp_path / "ckpt.db"))


def _assert_one_consistent_decision(svc: TriageService, ticket_id: str) -> dict:
    """Exactly one audit row, and it says what the ticket's final graph state says."""
    assert svc.deps.audit.count_decisions(ticket_id) == 1
    row = svc.deps.audit.get_decision(ticket_id)
    state = svc.graph.get_state({"configurable": {"thread_id": ticket_id}}).values
    assert row["route"] == state["score"]["route"]
    assert row["team"] == state["assignment"]["team"]
    assert row["intent"] == (state.get("prediction") or {}).get("label")
    assert row["reasons"] == state["score"]["reasons"]
    return row


def _crashing(name: str, when: str, fired: list[str]) -> Any:
    real = builder.NODE_FUNCS[name]

    def node(state: dict, deps: Any) -> dict:
        if when == "before" and not fired:
            fired.append(name)
            raise Crash(f"killed before {name}")
        update = real(state, deps)
        if when == "after" and not fired:
            fired.append(name)
            raise Crash(f"killed after {name} did its work, before its checkpoint")
        return update

    return node


# --- item 11: a crash at every node boundary ---------------------------------------------------


BOUNDARIES = [(n, w) for n in NODES for w in ("before", "after") if (n, w) != ("review", "after")]


@pytest.mark.parametrize(("node", "when"), BOUNDARIES)
def test_crash_at_every_node_boundary_ends_in_one_consistent_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, node: str, when: str
) -> None:
    fired: list[str] = []
    monkeypatch.setitem(builder.NODE_FUNCS, node, _crashing(node, when, fired))
    ticket = TicketIn(id="K1", channel="chat", text=CLEAN)
    with pytest.raises(Crash):
        _service(tmp_path).run(ticket)
    assert fired == [node]

    restarted = _service(tmp_path)  # a new process: same files, crash flag already spent
    out = restarted.run(ticket)  # the retry finishes the unfinished graph
    assert out["status"] == "pending_review" and out["route"] == "suggest", out
    row = _assert_one_consistent_decision(restarted, "chat:K1")
    assert row["status"] == "pending_review"
    done = restarted.resume("chat:K1", {"action": "accept", "by": "ana"})
    assert done["status"] == "completed"
    assert len(restarted.deps.audit.list_actions("chat:K1")) == 1
    assert restarted.deps.audit.get_decision("chat:K1")["status"] == "completed"


@pytest.mark.parametrize(
    ("node", "when"),
    [("review", "before"), ("review", "after"), ("apply_action", "before"), ("apply_action", "after")],
)
def test_crash_around_the_reviewers_action_records_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, node: str, when: str
) -> None:
    """On resume the review node re-runs (returning the action), then apply_action records it."""
    first = _service(tmp_path)
    first.run(TicketIn(id="K2", channel="chat", text=CLEAN))
    fired: list[str] = []
    monkeypatch.setitem(builder.NODE_FUNCS, node, _crashing(node, when, fired))
    action = {"action": "respond", "text": "Cancelled, no charge.", "by": "bo"}
    with pytest.raises(Crash):
        _service(tmp_path).resume("chat:K2", action)
    restarted = _service(tmp_path)
    done = restarted.resume("chat:K2", action)  # the reviewer's client retries
    assert done["status"] == "completed" and done["outcome"]["reply"] == "Cancelled, no charge."
    assert len(restarted.deps.audit.list_actions("chat:K2")) == 1
    _assert_one_consistent_decision(restarted, "chat:K2")


def _saver_crashing_at_put(path: Path, nth: int, fired: list[int]) -> Any:
    """A SQLite checkpointer that dies on its nth checkpoint write: the step's node writes are saved
    (put_writes) but its checkpoint is not — a boundary a crash inside a node never reaches."""
    saver = sqlite_checkpointer(path)
    real_put, calls = saver.put, [0]

    def put(*a: Any, **k: Any) -> Any:
        calls[0] += 1
        if calls[0] == nth and not fired:
            fired.append(nth)
            raise Crash(f"killed before checkpoint write {nth}")
        return real_put(*a, **k)

    saver.put = put  # type: ignore[method-assign]
    return saver


@pytest.mark.parametrize("nth", range(1, 10))  # a suggest run writes 9 checkpoints
def test_crash_between_a_steps_writes_and_its_checkpoint(tmp_path: Path, nth: int) -> None:
    """The chaos run found this one: after a step's writes were saved but before its checkpoint,
    the snapshot lists no next node, and the ticket looked finished half-way."""
    fired: list[int] = []
    deps = make_deps(tmp_path, classifier=FakeClassifier(probability=0.75))
    svc = TriageService(deps, _saver_crashing_at_put(tmp_path / "ckpt.db", nth, fired))
    ticket = TicketIn(id="W1", channel="chat", text=CLEAN)
    with pytest.raises(Crash):
        svc.run(ticket)
    assert fired == [nth]
    restarted = _service(tmp_path)
    out = restarted.run(ticket)
    assert out["status"] == "pending_review" and out["route"] == "suggest", out
    _assert_one_consistent_decision(restarted, "chat:W1")
    assert restarted.deps.audit.get_decision("chat:W1")["status"] == "pending_review"
    assert restarted.pending("chat:W1") is not None


@pytest.mark.parametrize("nth", [1, 2])  # a resume writes 2 checkpoints (review, apply_action)
def test_crash_between_a_resume_steps_writes_and_its_checkpoint(tmp_path: Path, nth: int) -> None:
    _service(tmp_path).run(TicketIn(id="W2", channel="chat", text=CLEAN))
    fired: list[int] = []
    deps = make_deps(tmp_path, classifier=FakeClassifier(probability=0.75))
    svc = TriageService(deps, _saver_crashing_at_put(tmp_path / "ckpt.db", nth, fired))
    action = {"action": "edit", "text": "Cancelled.", "by": "ana"}
    with pytest.raises(Crash):
        svc.resume("chat:W2", action)
    restarted = _service(tmp_path)
    done = restarted.resume("chat:W2", action)
    assert done["status"] == "completed" and done["outcome"]["reply"] == "Cancelled."
    assert len(restarted.deps.audit.list_actions("chat:W2")) == 1
    assert restarted.deps.audit.get_decision("chat:W2")["status"] == "completed"
    _assert_one_consistent_decision(restarted, "chat:W2")


_CHILD = """
import os, sys
sys.path[:0] = [{tests!r}, {root!r}]
from pathlib import Path
from fakes_graph import FakeClassifier, make_deps
from src.graph import builder
from src.graph.checkpoint import sqlite_checkpointer
from src.graph.service import TicketIn, TriageService
real = builder.NODE_FUNCS["audit"]
def audit_then_die(state, deps):
    real(state, deps)
    os._exit(17)  # the decision is written; the process dies before the checkpoint
builder.NODE_FUNCS["audit"] = audit_then_die
tmp = Path({tmp!r})
deps = make_deps(tmp, classifier=FakeClassifier(probability=0.97))
svc = TriageService(deps, sqlite_checkpointer(tmp / "ckpt.db"))
svc.run(TicketIn(id="K3", channel="email", text={text!r}))
"""


def test_process_killed_after_the_audit_write_is_finished_by_the_retry(tmp_path: Path) -> None:
    """The issue's case: dead between writing the decision and finishing the graph. The retry used
    to answer a stale ``duplicate`` from the checkpoint; now it finishes the graph."""
    here = Path(__file__).parent
    code = _CHILD.format(tests=str(here), root=str(here.parent.parent), tmp=str(tmp_path), text=CLEAN)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 17, proc.stderr[-2000:]
    svc = _service(tmp_path, classifier=FakeClassifier(probability=0.97))
    assert svc.get("email:K3")["status"] == "processing"  # decided, but the graph did not finish
    out = svc.run(TicketIn(id="K3", channel="email", text=CLEAN))
    assert out["status"] == "auto_resolved" and out["route"] == "auto_resolve"
    _assert_one_consistent_decision(svc, "email:K3")


# --- item 12: the fallback path makes a real review item -------------------------------------


def test_broken_graph_falls_back_to_a_review_item_a_human_can_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from src.graph import nodes

    def bug(state: dict) -> str:
        raise RuntimeError("bug in the graph wiring")

    monkeypatch.setattr(nodes, "route_after_preprocess", bug)  # not a guarded node: the graph breaks
    svc = _service(tmp_path, classifier=FakeClassifier(probability=0.97))
    out = svc.run(TicketIn(id="F1", channel="chat", text=CLEAN))
    assert out["route"] == "escalate" and out["status"] == "pending_review"
    assert out["team"] == svc.deps.routing.escalation_team
    assert any("graph: RuntimeError: bug in the graph wiring" in r for r in out["reasons"])
    review = svc.pending("chat:F1")
    assert review is not None and review["ticket"]["text"]  # the reviewer sees the ticket
    row = _assert_one_consistent_decision(svc, "chat:F1")
    assert row["status"] == "pending_review"

    monkeypatch.undo()  # the bug is fixed and the service restarted; the ticket is retried
    fixed = _service(tmp_path, classifier=FakeClassifier(probability=0.97))
    again = fixed.run(TicketIn(id="F1", channel="chat", text=CLEAN))
    assert again["route"] == "escalate" and again.get("duplicate")  # never disagrees with the audit row
    done = fixed.resume("chat:F1", {"action": "respond", "text": "A human looked at it.", "by": "sup"})
    assert done["status"] == "completed"
    assert fixed.deps.audit.get_decision("chat:F1")["status"] == "completed"
    _assert_one_consistent_decision(fixed, "chat:F1")


def test_checkpointer_down_decision_gets_its_review_item_when_it_is_back(tmp_path: Path) -> None:
    svc = _service(tmp_path, classifier=FakeClassifier(probability=0.97))

    class Down:
        def __getattr__(self, name: str) -> Any:
            def fail(*a: Any, **k: Any) -> Any:
                raise ConnectionError("checkpoint database is down")

            return fail

    svc.graph = Down()
    out = svc.run(TicketIn(id="F2", channel="chat", text=CLEAN))
    assert out["route"] == "escalate" and out["status"] == "pending_review"
    assert svc.deps.audit.count_decisions("chat:F2") == 1

    back = _service(tmp_path, classifier=FakeClassifier(probability=0.97))  # checkpointer is back
    assert back.pending("chat:F2")["route"] == "escalate"
    assert back.get("chat:F2")["status"] == "pending_review"
    done = back.resume("chat:F2", {"action": "accept", "by": "ana"})
    assert done["status"] == "completed"
    again = back.run(TicketIn(id="F2", channel="chat", text=CLEAN))
    assert again["route"] == "escalate" and again["status"] == "completed"
    _assert_one_consistent_decision(back, "chat:F2")
    assert len(back.deps.audit.list_actions("chat:F2")) == 1


def test_direct_fallback_decision_wins_over_a_half_run_graph(tmp_path: Path) -> None:
    """A worker died mid-graph; the next attempt found the checkpoint database down and audited an
    escalation directly. When it is back, the half-run graph must not finish with its own route."""
    clf = FakeClassifier(probability=0.97, fail=Crash("killed in classify"))
    ticket = TicketIn(id="F3", channel="chat", text=CLEAN)
    with pytest.raises(Crash):
        _service(tmp_path, classifier=clf).run(ticket)
    down = _service(tmp_path, classifier=FakeClassifier(probability=0.97))

    class Down:
        def __getattr__(self, name: str) -> Any:
            def fail(*a: Any, **k: Any) -> Any:
                raise ConnectionError("checkpoint database is down")

            return fail

    down.graph = Down()
    assert down.run(ticket)["route"] == "escalate"
    back = _service(tmp_path, classifier=FakeClassifier(probability=0.97))  # would auto-resolve
    out = back.run(ticket)
    assert out["route"] == "escalate" and out["status"] == "pending_review", out
    _assert_one_consistent_decision(back, "chat:F3")
    assert back.resume("chat:F3", {"action": "accept"})["status"] == "completed"


# --- item 15: one execution per ticket at a time -----------------------------------------------


class _SlowProvider(FakeProvider):
    """Holds the first LLM call long enough for a second run to arrive."""

    def complete_json(self, *a: Any, **k: Any) -> Any:
        time.sleep(0.6)
        return super().complete_json(*a, **k)


def _race(fn: Any, n: int = 2) -> list[Any]:
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def go(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 - the loser's answer is part of the result
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _neutral_provider() -> _SlowProvider:
    from fakes_graph import neutral_analysis

    return _SlowProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")


def test_concurrent_runs_of_one_ticket_execute_once(tmp_path: Path) -> None:
    provider = _neutral_provider()
    svc = _service(tmp_path, provider=provider)
    results = _race(lambda: svc.run(TicketIn(id="L1", channel="chat", text=CLEAN)))
    busy = [r for r in results if r.get("busy")]
    done = [r for r in results if not r.get("busy")]
    assert len(busy) == 1 and len(done) == 1, results
    assert busy[0]["status"] == "processing" and busy[0]["ticket_id"] == "chat:L1"
    assert [c["kind"] for c in provider.calls].count("json") == 1  # the LLM was paid once
    assert svc.deps.audit.count_decisions("chat:L1") == 1


def test_concurrent_resumes_record_one_action(tmp_path: Path) -> None:
    svc = _service(tmp_path)
    svc.run(TicketIn(id="L2", channel="chat", text=CLEAN))
    real = svc.deps.audit.record_action

    def slow_record(action: Any) -> str:
        time.sleep(0.6)
        return real(action)

    svc.deps.audit.record_action = slow_record  # type: ignore[method-assign]
    results = _race(lambda: svc.resume("chat:L2", {"action": "edit", "text": "Done.", "by": "ana"}))
    assert sum(isinstance(r, TicketBusy) for r in results) == 1, results
    assert sum(isinstance(r, dict) and r["status"] == "completed" for r in results) == 1
    assert len(svc.deps.audit.list_actions("chat:L2")) == 1


def test_a_second_process_sees_the_ticket_busy(tmp_path: Path) -> None:
    """The SQLite deployment's lock file works across processes (CLI --resume beside the API)."""
    from src.graph.locks import FileTicketLocks

    locks = FileTicketLocks(tmp_path / "audit.db.locks")
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from pathlib import Path\nfrom src.graph.locks import FileTicketLocks\n"
        "with FileTicketLocks(Path(%r)).hold(%r) as got: print(got)\n"
    )
    root = str(Path(__file__).parents[2])
    with locks.hold("chat:X") as got:
        assert got
        other = subprocess.run([sys.executable, "-c", code % (root, str(locks.path), "chat:X")],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        assert other.stdout.strip() == "False", other.stderr
        free = subprocess.run([sys.executable, "-c", code % (root, str(locks.path), "chat:Y")],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert free.stdout.strip() == "True"
    after = subprocess.run([sys.executable, "-c", code % (root, str(locks.path), "chat:X")],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert after.stdout.strip() == "True"


def test_postgres_advisory_lock_serialises_across_services(postgres_url: str, tmp_path: Path) -> None:
    import uuid

    from src.audit.outbox import OutboxAuditStore
    from src.audit.postgres_store import PostgresAuditStore
    from src.graph.checkpoint import postgres_checkpointer

    schema = f"lock_test_{uuid.uuid4().hex[:10]}"
    store = PostgresAuditStore(postgres_url, schema=schema)
    saver = postgres_checkpointer(postgres_url, schema=schema, pool_size=4)
    services = []
    try:
        for i in range(2):  # two workers (own pools, own locks) on one database
            provider = _neutral_provider()
            deps = make_deps(
                tmp_path / f"w{i}", classifier=FakeClassifier(probability=0.75), provider=provider
            )
            deps.audit = OutboxAuditStore(store, tmp_path / f"w{i}" / "outbox")
            services.append(TriageService(deps, saver))
        assert type(services[0].locks).__name__ == "PostgresTicketLocks"
        barrier = threading.Barrier(2)
        results: list[Any] = [None, None]

        def go(i: int) -> None:
            barrier.wait()
            results[i] = services[i].run(TicketIn(id="PG1", channel="chat", text=CLEAN))

        threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(bool(r.get("busy")) for r in results) == [False, True], results
        calls = sum([c["kind"] for c in s.deps.provider.calls].count("json") for s in services)
        assert calls == 1
        assert store.count_decisions("chat:PG1") == 1
    finally:
        for s in services:
            s.locks.close()  # type: ignore[attr-defined]
        saver.conn.close()
        store.drop_schema()
        store.close()


# --- item 17: the team follows the route when an audit failure lowers it ------------------------


def test_audit_failure_escalates_and_moves_the_ticket_to_the_escalation_team(tmp_path: Path) -> None:
    svc = _service(tmp_path, classifier=FakeClassifier(probability=0.97))

    def disk_gone(decision: Any) -> str:
        raise OSError("outbox disk is full")

    svc.deps.audit.record_decision = disk_gone  # type: ignore[method-assign]
    out = svc.run(TicketIn(id="A1", channel="chat", text=CLEAN))
    assert out["route"] == "escalate"
    assert out["team"] == svc.deps.routing.escalation_team
    state = svc.graph.get_state({"configurable": {"thread_id": "chat:A1"}}).values
    assert state["assignment"]["queue"] == "escalation"
    assert any("audit write failed" in r for r in out["reasons"])


# --- item 18: identity from channel + source id -------------------------------------------------


def test_identity_is_channel_plus_source_id_and_customers_are_never_merged(tmp_path: Path) -> None:
    svc = _service(tmp_path, classifier=FakeClassifier(probability=0.97))
    a = svc.run(TicketIn(channel="chat", text="cancel my order"))
    b = svc.run(TicketIn(channel="chat", text="cancel my order"))  # another customer, same words
    assert a["ticket_id"] != b["ticket_id"] and not b.get("duplicate")
    assert a["ticket_id"].startswith("chat:") and svc.deps.audit.count_decisions() == 2

    first = svc.run(TicketIn(id="42", channel="email", text=CLEAN))
    retry = svc.run(TicketIn(id=" 42 ", channel="Email", text=CLEAN))  # the same message, re-delivered
    assert first["ticket_id"] == retry["ticket_id"] == "email:42" and retry["duplicate"]
    other = svc.run(TicketIn(id=42, channel="zendesk", text=CLEAN))  # same number, other source
    assert other["ticket_id"] == "zendesk:42" and not other.get("duplicate")
    assert svc.deps.audit.count_decisions() == 4


def test_ticket_id_for_contract() -> None:
    assert ticket_id_for("chat", "abc") == "chat:abc"
    assert ticket_id_for("Zendesk", 17) == "zendesk:17"
    fresh = {ticket_id_for("api", None) for _ in range(3)} | {ticket_id_for("api", "  ")}
    assert len(fresh) == 4 and all(t.startswith("api:") and len(t) == 36 for t in fresh)
    long = ticket_id_for("email", "<" + "x" * 500 + "@host>")
    assert long == ticket_id_for("email", "<" + "x" * 500 + "@host>") and len(long) < 60
    assert ticket_id_for("email", "a\nb") != ticket_id_for("email", "a b")
    with pytest.raises(ValueError, match="invalid channel"):
        ticket_id_for("web chat!", "1")


def test_cli_ids_are_namespaced_and_resume_accepts_both(tmp_path: Path, monkeypatch, capsys) -> None:
    from src.graph import run as run_cli

    svc = _service(tmp_path)
    monkeypatch.setattr(TriageService, "from_settings", classmethod(lambda cls, settings=None: svc))
    assert run_cli.main([CLEAN, "--id", "9", "--channel", "email"]) == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert out["ticket_id"] == "email:9"
    assert run_cli.main(["--resume", "9", "--channel", "email", "--action", "ignore"]) == 0
    assert json.loads(capsys.readouterr().out.strip())["status"] == "completed"
    assert os.environ.get("TRIAGE_DATABASE_URL") is None or True
