"""When checkpoints are written (``Settings.graph_durability``) and what happens when they are missing
or behind the audit row: exactly one decision that agrees with the graph, in every mode.

``exit`` writes a checkpoint only when the run pauses or ends (the classifier-only fast path); a process
killed mid-run then leaves *nothing* in the checkpointer, which a ``BaseException`` cannot simulate
(LangGraph's exit handler would still save): the saver here drops every write once the crash fired.
A power loss can roll back the newest checkpoints (they are not fsynced per write): simulated by
deleting them from the checkpoint file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fakes_graph import FakeClassifier, make_deps
from test_graph_exactly_once import (
    BOUNDARIES,
    CLEAN,
    NODES,
    Crash,
    _assert_one_consistent_decision,
    _crashing,
)

from src.graph import builder
from src.graph.checkpoint import sqlite_checkpointer
from src.graph.service import PRE_AUDIT, TicketIn, TriageService, _pending_nodes


def _service(tmp_path: Path, durability: str = "exit", saver: Any = None, **kw: Any) -> TriageService:
    kw.setdefault("classifier", FakeClassifier(probability=0.75))  # suggest: pauses for review
    deps = make_deps(tmp_path, graph_durability=durability, **kw)
    return TriageService(deps, saver if saver is not None else sqlite_checkpointer(tmp_path / "ckpt.db"))


def test_auto_durability_is_sync_with_an_llm_and_exit_without(tmp_path: Path) -> None:
    svc = _service(tmp_path, durability="auto")
    assert svc.durability == "sync"
    svc.deps.provider = None  # what TRIAGE_SERVICE_LLM=false does
    assert svc.durability == "exit"
    assert _service(tmp_path / "s", durability="sync").durability == "sync"


def test_exit_writes_one_checkpoint_per_run_instead_of_one_per_step(tmp_path: Path) -> None:
    counts = {}
    for mode in ("sync", "exit"):
        svc = _service(tmp_path / mode, durability=mode)
        puts: list[int] = []
        real = svc.checkpointer.put

        def counted(*a: Any, _real: Any = real, _puts: list = puts, **k: Any) -> Any:
            _puts.append(1)
            return _real(*a, **k)

        svc.checkpointer.put = counted  # type: ignore[method-assign]
        out = svc.run(TicketIn(id="D1", channel="chat", text=CLEAN))
        assert out["status"] == "pending_review" and out["route"] == "suggest"
        counts[mode] = len(puts)
        _assert_one_consistent_decision(svc, "chat:D1")
    assert counts["exit"] == 1 and counts["sync"] >= 8, counts


class _DyingSaver:
    """A checkpointer in a process that dies: once a crash fired, nothing more reaches the file."""

    def __init__(self, path: Path) -> None:
        self.saver = sqlite_checkpointer(path)
        self.fired: list[str] = []  # what test_graph_exactly_once._crashing appends when it kills
        for name in ("put", "put_writes"):
            setattr(self.saver, name, self._unless_dead(getattr(self.saver, name)))

    def _unless_dead(self, write: Any) -> Any:
        def guarded(*a: Any, **k: Any) -> Any:
            if self.dead:
                raise Crash("the process is gone: this write never happens")
            return write(*a, **k)

        return guarded

    @property
    def dead(self) -> bool:
        return bool(self.fired)


@pytest.mark.parametrize(("node", "when"), BOUNDARIES)
def test_exit_mode_process_killed_at_every_node_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, node: str, when: str
) -> None:
    saver = _DyingSaver(tmp_path / "ckpt.db")
    monkeypatch.setitem(builder.NODE_FUNCS, node, _crashing(node, when, saver.fired))
    ticket = TicketIn(id="X1", channel="chat", text=CLEAN)
    with pytest.raises(Crash):
        _service(tmp_path, saver=saver.saver).run(ticket)
    assert saver.dead
    monkeypatch.undo()

    restarted = _service(tmp_path)
    calls_before = len(restarted.deps.provider.calls)
    out = restarted.run(ticket)
    assert out["status"] == "pending_review" and out["route"] == "suggest", out
    row = _assert_one_consistent_decision(restarted, "chat:X1")
    if NODES.index(node) > NODES.index("audit") or (node, when) == ("audit", "after"):
        # the decision was written before the process died: the retry rebuilt the review item from
        # the row and ran no model again
        assert len(restarted.deps.provider.calls) == calls_before
    assert row["status"] == "pending_review"
    done = restarted.resume("chat:X1", {"action": "accept", "by": "ana"})
    assert done["status"] == "completed"
    assert len(restarted.deps.audit.list_actions("chat:X1")) == 1
    assert restarted.deps.audit.get_decision("chat:X1")["status"] == "completed"


def _drop_newest_checkpoints(path: Path, thread_id: str, n: int) -> None:
    """A power loss: the newest ``n`` checkpoints of a thread (and their writes) never reached the disk."""
    conn = sqlite3.connect(str(path))
    ids = [r[0] for r in conn.execute(
        "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? ORDER BY checkpoint_id DESC LIMIT ?",
        (thread_id, n))]  # fmt: skip
    for cid in ids:
        conn.execute("DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id = ?", (thread_id, cid))
        conn.execute("DELETE FROM writes WHERE thread_id = ? AND checkpoint_id = ?", (thread_id, cid))
    conn.commit()
    conn.close()


def test_checkpoint_rolled_back_behind_the_audit_row_never_reruns_a_step(tmp_path: Path) -> None:
    """Sync mode (LLM on): after the decision, the checkpoints of the last steps are lost. Continuing
    from the old checkpoint would call the LLM again and could decide differently; the row wins."""
    svc = _service(tmp_path, durability="sync")
    svc.run(TicketIn(id="P1", channel="chat", text=CLEAN))
    calls = len(svc.deps.provider.calls)
    for _ in range(20):
        if _pending_nodes(svc._snapshot("chat:P1")) & PRE_AUDIT:
            break
        _drop_newest_checkpoints(tmp_path / "ckpt.db", "chat:P1", 1)
    assert _pending_nodes(svc._snapshot("chat:P1")) & PRE_AUDIT
    assert svc.get("chat:P1")["status"] == "pending_review"  # the row's view, not "processing"
    restarted = _service(tmp_path, durability="sync")
    out = restarted.run(TicketIn(id="P1", channel="chat", text=CLEAN))
    assert out["status"] == "pending_review" and out["duplicate"] is True
    assert calls > 0 and restarted.deps.provider.calls == []  # analyze/draft not asked again
    _assert_one_consistent_decision(restarted, "chat:P1")
    done = restarted.resume("chat:P1", {"action": "accept", "by": "ana"})
    assert done["status"] == "completed"
    assert len(restarted.deps.audit.list_actions("chat:P1")) == 1


def _copy_db(src: Path, dst: Path) -> None:
    """A consistent copy of an SQLite file (WAL included) through the backup API."""
    a, b = sqlite3.connect(str(src)), sqlite3.connect(str(dst))
    a.backup(b)
    a.close()
    b.close()


def test_completed_review_whose_checkpoint_rolled_back_is_not_recorded_twice(tmp_path: Path) -> None:
    svc = _service(tmp_path, durability="sync")
    svc.run(TicketIn(id="P2", channel="chat", text=CLEAN))
    _copy_db(tmp_path / "ckpt.db", tmp_path / "paused.db")
    done = svc.resume("chat:P2", {"action": "respond", "text": "Cancelled.", "by": "ana"})
    assert done["status"] == "completed"
    _copy_db(tmp_path / "paused.db", tmp_path / "ckpt.db")  # the action's checkpoints are lost
    restarted = _service(tmp_path, durability="sync")
    assert restarted._snapshot("chat:P2").interrupts  # the graph still waits for a reviewer ...
    assert restarted.get("chat:P2")["status"] == "completed"  # ... but the audit row says it is done
    again = restarted.resume("chat:P2", {"action": "ignore", "by": "bo"})  # a second reviewer
    assert again["status"] == "completed" and again["duplicate"] is True
    assert [a["action"] for a in restarted.deps.audit.list_actions("chat:P2")] == ["respond"]
    rerun = restarted.run(TicketIn(id="P2", channel="chat", text=CLEAN))
    assert rerun["status"] == "completed" and rerun["duplicate"] is True
