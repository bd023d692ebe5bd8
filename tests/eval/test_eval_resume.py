"""Resumability: a run killed mid-way continues where it stopped, with no duplicate results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.eval.execute import common_tickets, run_benchmark
from src.eval.results import ResultLog, run_fingerprint
from src.eval.runner import build_parser, main, run
from src.eval.types import BenchTicket, SystemOutput, TicketResult


class Echo:
    """Predicts the word before the first space; counts calls; can be told to 'die' after N tickets."""

    def __init__(self, name: str, die_after: int | None = None, exc: BaseException | None = None) -> None:
        self.name = name
        self.die_after = die_after
        self.exc = exc or KeyboardInterrupt()
        self.calls: list[str] = []

    def run(self, ticket: BenchTicket) -> SystemOutput:
        if self.die_after is not None and len(self.calls) >= self.die_after:
            raise self.exc
        self.calls.append(ticket.id)
        pred = ticket.text.split()[0]
        return SystemOutput(pred=pred, confidence=0.9, score=0.9, route="auto_resolve")


def tickets(n: int = 6) -> list[BenchTicket]:
    return [BenchTicket(id=f"t{i}", text=f"{'ab'[i % 2]} ticket {i}", label="ab"[i % 2]) for i in range(n)]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_killed_run_resumes_without_duplicates(tmp_path: Path) -> None:
    log = ResultLog(tmp_path / "run.jsonl")
    ts = tickets()
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(ts, [Echo("one"), Echo("two", die_after=2)], log, progress=False)
    # ticket-major: t0 and t1 done by both, t2 by "one" only, then "two" died
    assert len(lines(log.path)) == 5

    one, two = Echo("one"), Echo("two")
    results = run_benchmark(ts, [one, two], log, progress=False)
    assert one.calls == ["t3", "t4", "t5"] and two.calls == ["t2", "t3", "t4", "t5"]  # only what was missing
    rows = lines(log.path)
    keys = [(x["system"], x["ticket_id"]) for x in rows]
    assert len(keys) == len(set(keys)) == 12
    assert [r.ticket_id for r in results["two"]] == [t.id for t in ts]  # ticket order kept


def test_torn_last_line_is_ignored_and_redone(tmp_path: Path) -> None:
    log = ResultLog(tmp_path / "run.jsonl")
    ts = tickets(3)
    run_benchmark(ts[:2], [Echo("one")], log, progress=False)
    with log.path.open("a") as fh:
        fh.write('{"system": "one", "ticket_id": "t2", "pre')  # killed mid-write
    sys_ = Echo("one")
    run_benchmark(ts, [sys_], log, progress=False)
    assert sys_.calls == ["t2"]
    assert len(log.load()) == 3


def test_system_exception_is_recorded_fail_closed(tmp_path: Path) -> None:
    log = ResultLog(tmp_path / "run.jsonl")
    results = run_benchmark(
        tickets(2), [Echo("bad", die_after=0, exc=ValueError("bug"))], log, progress=False
    )
    assert all(r.route == "escalate" and r.error == "ValueError: bug" for r in results["bad"])


def test_fingerprint_changes_with_tickets_and_config() -> None:
    ts = tickets()
    assert run_fingerprint(ts, {"m": 1}) == run_fingerprint(list(ts), {"m": 1})
    assert run_fingerprint(ts, {"m": 1}) != run_fingerprint(ts, {"m": 2})
    assert run_fingerprint(ts, {"m": 1}) != run_fingerprint(ts[:-1], {"m": 1})


def _csv(tmp_path: Path) -> Path:
    rows = ["text,label"] + [f"{'ab'[i % 2]} customer message {i},{'ab'[i % 2]}" for i in range(20)]
    path = tmp_path / "data.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_runner_end_to_end_with_fake_systems_resumes_and_writes_reports(tmp_path: Path) -> None:
    data = _csv(tmp_path)
    slice_path = tmp_path / "slice.jsonl"
    slice_path.write_text(
        json.dumps({"text": "a I will sue you", "label": "a", "should_escalate": True, "why": "legal"}) + "\n"
    )
    argv = [
        "--data",
        str(data),
        "--systems",
        "zero-shot,classifier-only",
        "--limit",
        "10",
        "--out",
        str(tmp_path / "out"),
        "--escalation-slice",
        str(slice_path),
        "--docs",
        str(tmp_path / "cmp.md"),
        "--no-progress",
    ]
    args = build_parser().parse_args(argv)
    args.argv = argv
    with pytest.raises(KeyboardInterrupt):
        run(args, systems_override=[Echo("zero-shot"), Echo("classifier-only", die_after=4)])
    logs = list((tmp_path / "out" / "benchmark_runs").glob("*.jsonl"))
    assert len(logs) == 1 and len(lines(logs[0])) == 4 + 4 + 1  # 4 tickets by both, the 5th by zero-shot

    zs, cls = Echo("zero-shot"), Echo("classifier-only")
    report = run(args, systems_override=[zs, cls])
    assert len(zs.calls) == 6 and len(cls.calls) == 7
    assert len(lines(logs[0])) == 22
    block = report["systems"]["classifier-only"]
    assert block["n_data"] == 10 and block["accuracy"] == 1.0
    assert block["escalation_slice"]["wrongful_auto_resolves"] == 1
    saved = json.loads((tmp_path / "out" / "benchmark.json").read_text())
    assert set(saved["systems"]) == {"zero-shot", "classifier-only"}
    assert saved["run"]["command"].startswith("python -m src.eval.runner --data")
    assert (tmp_path / "out" / "benchmark" / "route_mix.png").stat().st_size > 1000
    assert (tmp_path / "out" / "benchmark" / "confusion_classifier_only.png").is_file()
    assert (tmp_path / "out" / "benchmark" / "reliability_zero_shot.png").is_file()
    md = (tmp_path / "cmp.md").read_text()
    assert "| classifier-only |" in md and "## Reproduce" in md


def test_cli_user_errors_are_messages_not_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--model", str(tmp_path / "nope"), "--out", str(tmp_path), "--no-progress"]) == 2
    assert "no split manifest" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["--data", str(_csv(tmp_path)), "--systems", "magic", "--out", str(tmp_path)]) == 2
    assert "unknown system" in capsys.readouterr().err
    bad_slice = tmp_path / "bad.jsonl"
    bad_slice.write_text('{"text": "x"}\n')
    assert (
        main(
            [
                "--data",
                str(_csv(tmp_path)),
                "--systems",
                "zero-shot",
                "--escalation-slice",
                str(bad_slice),
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "bad slice row" in capsys.readouterr().err


def test_deadline_stops_between_tickets_and_same_tickets_for_all(tmp_path: Path) -> None:
    now = [0.0]

    class Slow(Echo):
        def run(self, ticket: BenchTicket) -> SystemOutput:
            now[0] += 1.0  # each decision "takes" one second
            return super().run(ticket)

    log = ResultLog(tmp_path / "run.jsonl")
    a, b = Slow("a"), Slow("b")
    results = run_benchmark(tickets(6), [a, b], log, progress=False, deadline=3.0, clock=lambda: now[0])
    # t0 at 0s, t1 at 2s; at 4s the deadline has passed: no third ticket starts
    assert [r.ticket_id for r in results["a"]] == ["t0", "t1"] == [r.ticket_id for r in results["b"]]
    rest = run_benchmark(tickets(6), [Slow("a"), Slow("b")], log, progress=False)
    assert len(rest["a"]) == len(rest["b"]) == 6


def test_common_tickets_keeps_only_what_every_system_finished() -> None:
    def res(system: str, tid: str) -> TicketResult:
        return TicketResult(system=system, ticket_id=tid, label="a", pred="a")

    out = common_tickets({"x": [res("x", "1"), res("x", "2")], "y": [res("y", "2")]})
    assert [r.ticket_id for r in out["x"]] == ["2"] and [r.ticket_id for r in out["y"]] == ["2"]


def test_runner_max_minutes_marks_report_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import src.eval.runner as runner_mod

    now = [0.0]

    def fake_monotonic() -> float:
        now[0] += 10.0  # every look at the clock costs 10 s
        return now[0]

    monkeypatch.setattr(runner_mod, "_now", fake_monotonic)
    argv = [
        "--data",
        str(_csv(tmp_path)),
        "--systems",
        "zero-shot,classifier-only",
        "--out",
        str(tmp_path / "out"),
        "--escalation-slice",
        "",
        "--docs",
        str(tmp_path / "cmp.md"),
        "--max-minutes",
        "1",
        "--no-progress",
    ]
    args = build_parser().parse_args(argv)
    args.argv = argv
    report = run(args, systems_override=[Echo("zero-shot"), Echo("classifier-only")])
    assert report["run"]["partial"] is True
    n = report["run"]["data"]["n_tickets"]
    assert 0 < n < report["run"]["data"]["n_planned"] == 20
    assert report["systems"]["zero-shot"]["n_data"] == report["systems"]["classifier-only"]["n_data"] == n
    assert "Partial run" in (tmp_path / "cmp.md").read_text()


def test_report_only_runs_nothing_and_rebuilds_outputs(tmp_path: Path) -> None:
    argv = ["--data", str(_csv(tmp_path)), "--systems", "zero-shot", "--out", str(tmp_path / "out"),
            "--escalation-slice", "", "--docs", "", "--no-progress"]  # fmt: skip
    args = build_parser().parse_args(argv)
    args.argv = argv
    with pytest.raises(KeyboardInterrupt):
        run(args, systems_override=[Echo("zero-shot", die_after=5)])
    args = build_parser().parse_args([*argv, "--report-only"])
    args.argv = [*argv, "--report-only"]
    sys_ = Echo("zero-shot")
    report = run(args, systems_override=[sys_])
    assert sys_.calls == [] and report["run"]["partial"] is True
    assert report["systems"]["zero-shot"]["n_data"] == 5
    assert report["run"]["rebuilt_from_log"] is True and "--report-only" not in report["run"]["command"]
