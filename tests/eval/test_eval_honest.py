"""Honest benchmark runs (#12): what a run is stamped with, where it writes, what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.eval.execute import run_benchmark
from src.eval.metrics import escalation_metrics, system_metrics
from src.eval.report import check_targets
from src.eval.results import ResultLog
from src.eval.runner import BenchmarkError, build_parser, run
from src.eval.types import BenchTicket, SystemOutput, TicketResult


class Echo:
    """Predicts the first word; ``fail`` ids raise (a system bug), ``failing`` ids record a failed step."""

    def __init__(self, name: str, fail: set[str] | None = None, failing: set[str] | None = None) -> None:
        self.name, self.fail, self.failing = name, fail or set(), failing or set()
        self.calls: list[str] = []

    def run(self, ticket: BenchTicket) -> SystemOutput:
        self.calls.append(ticket.id)
        if ticket.id in self.fail:
            raise RuntimeError("LLM server down")
        if ticket.id in self.failing or "sue" in ticket.text:
            codes = ["analyze:timeout"] if ticket.id in self.failing else []
            return SystemOutput(pred=ticket.text.split()[0], route="escalate", failure_codes=codes)
        return SystemOutput(pred=ticket.text.split()[0], confidence=0.9, score=0.9, route="auto_resolve")


def _csv(tmp_path: Path, n: int = 12) -> Path:
    rows = ["text,label"] + [f"{'ab'[i % 2]} customer message {i},{'ab'[i % 2]}" for i in range(n)]
    path = tmp_path / "data.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _args(tmp_path: Path, *extra: str, out: bool = False):  # noqa: ANN202
    argv = [
        "--data",
        str(_csv(tmp_path)),
        "--systems",
        "classifier-only",
        "--escalation-slice",
        "",
        "--no-progress",
        *extra,
    ]
    if out:
        argv += ["--out", str(tmp_path / "out")]
    args = build_parser().parse_args(argv)
    args.argv = argv
    return args


def test_default_output_is_git_ignored_runs_and_docs_only_on_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = _args(tmp_path)
    assert args.out == Path("runs/benchmark") and not args.publish
    report = run(args, systems_override=[Echo("classifier-only")])
    assert (tmp_path / "runs" / "benchmark" / "benchmark.json").is_file()
    assert not (tmp_path / "reports").exists() and not (tmp_path / "docs").exists()
    assert report["run"]["published"] is False

    report = run(_args(tmp_path, "--publish"), systems_override=[Echo("classifier-only")])
    assert (tmp_path / "reports" / "benchmark.json").is_file()
    assert (tmp_path / "docs" / "pipeline_comparison.md").is_file()
    assert report["run"]["published"] is True


def test_report_only_never_deletes(tmp_path: Path) -> None:
    run(_args(tmp_path, out=True), systems_override=[Echo("classifier-only")])
    log = next((tmp_path / "out" / "benchmark_runs").glob("*.jsonl"))
    before = log.read_text()
    with pytest.raises(BenchmarkError, match="--report-only"):
        run(_args(tmp_path, "--report-only", "--fresh", out=True), systems_override=[Echo("classifier-only")])
    assert log.read_text() == before


def test_every_row_is_stamped_and_the_fingerprint_covers_the_configuration(tmp_path: Path) -> None:
    report = run(_args(tmp_path, out=True), systems_override=[Echo("classifier-only")])
    log = Path(report["run"]["results_log"])
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    fp = report["run"]["fingerprint"]
    for row in rows:
        assert row["fingerprint"] == fp and row["commit"] and row["host"] and row["finished_at"]
    cfg = report["run"]["config"]
    for key in (
        "git_commit",
        "prompt_versions",
        "thresholds",
        "auto_min_similarity",
        "template_min_similarity",
        "knowledge_base",
        "llm",
        "classifier",
    ):
        assert key in cfg, key
    assert {"analyze", "draft", "zero_shot"} <= set(cfg["prompt_versions"])


def test_a_changed_setting_starts_a_new_run_instead_of_resuming(tmp_path: Path) -> None:
    from src.config import Settings

    first = run(
        _args(tmp_path, out=True),
        settings=Settings(auto_min_similarity=0.6),
        systems_override=[Echo("classifier-only")],
    )
    again = run(
        _args(tmp_path, out=True),
        settings=Settings(auto_min_similarity=0.6),
        systems_override=[Echo("classifier-only")],
    )
    other = run(
        _args(tmp_path, out=True),
        settings=Settings(auto_min_similarity=0.7),
        systems_override=[Echo("classifier-only")],
    )
    assert first["run"]["fingerprint"] == again["run"]["fingerprint"] != other["run"]["fingerprint"]


def test_error_rows_are_retried_on_resume(tmp_path: Path) -> None:
    tickets = [BenchTicket(id=f"t{i}", text=f"a text {i}", label="a") for i in range(3)]
    log = ResultLog(tmp_path / "run.jsonl")
    first = run_benchmark(tickets, [Echo("x", fail={"t1"})], log, progress=False)
    assert first["x"][1].error and first["x"][1].route == "escalate"
    again = Echo("x")
    second = run_benchmark(tickets, [again], log, progress=False)
    assert again.calls == ["t1"]  # only the error row ran again
    assert second["x"][1].error is None and second["x"][1].route == "auto_resolve"
    assert ResultLog(log.path).load()[("x", "t1")].error is None  # the retry wins on reading


def test_failure_caused_catches_are_not_counted_as_catches() -> None:
    def row(tid: str, route: str, codes: list[str] | None = None, error: str | None = None) -> TicketResult:
        return TicketResult(
            system="s",
            ticket_id=tid,
            label="a",
            pred="a",
            route=route,
            source="slice",
            should_escalate=True,
            failure_codes=codes or [],
            error=error,
        )

    m = escalation_metrics(
        [
            row("1", "escalate"),
            row("2", "escalate", ["analyze:timeout"]),
            row("3", "suggest", error="RuntimeError: boom"),
            row("4", "auto_resolve"),
        ]
    )
    assert m["caught"] == 1 and m["caught_by_failure"] == 2 and m["wrongful_auto_resolves"] == 1
    assert m["failure_codes"] == {"analyze:timeout": 1, "system_error": 1}
    assert 0 < m["wrongful_ci95"][1] < 1


def test_targets_are_judged_on_confidence_bounds() -> None:
    rows = [
        TicketResult(system="s", ticket_id=str(i), label="a", pred="a", route="auto_resolve", latency_s=1.0)
        for i in range(49)
    ]
    block = system_metrics(rows, ["a"])
    t = check_targets(block)
    assert block["auto_resolve_precision"]["precision"] == 1.0
    assert t["auto_resolve_precision"]["met"] is False  # 49/49 only proves ~0.94
    assert t["auto_resolve_precision"]["ci95_low"] < 0.97
    assert t["latency_p50_s"]["met"] is True and t["latency_p95_s"]["target"] == 8.0
    assert block["usage"]["throughput_tickets_per_min"] == pytest.approx(60.0)


def test_benchmark_tickets_found_in_the_knowledge_base_are_dropped_and_reported(tmp_path: Path) -> None:
    from src.retrieval.records import text_hash
    from src.text.pii import mask_pii

    class KB:
        def existing_hashes(self, hashes: list[str]) -> set[str]:
            leaked = {text_hash(mask_pii("a customer message 0").text)}
            return set(hashes) & leaked

        def count(self) -> int:
            return 10

    report = run(_args(tmp_path, out=True), systems_override=[Echo("classifier-only")], kb=KB())
    overlap = report["run"]["kb_overlap"]
    assert overlap["checked"] is True and overlap["dropped"] == 1
    assert report["run"]["data"]["n_tickets"] == 11
    with pytest.raises(BenchmarkError, match="knowledge base"):
        run(
            _args(tmp_path, "--kb-overlap", "refuse", out=True),
            systems_override=[Echo("classifier-only")],
            kb=KB(),
        )


def test_classifier_rules_baseline_catches_what_the_rules_see() -> None:
    from src.classifier.types import Prediction
    from src.eval.systems import ClassifierRulesSystem

    class Clf:
        labels = ["get_refund"]
        thresholds = {"auto_resolve": 0.85, "suggest": 0.6, "per_intent": {}, "source": "calibrated"}

        def predict(self, texts: list[str], batch_size: int = 64) -> list[Prediction]:
            return [Prediction(label="get_refund", confidence=0.99, margin=0.98, entropy=0.02) for _ in texts]

    sys_ = ClassifierRulesSystem(Clf())
    legal = BenchTicket(
        id="l", text="refund me by Friday or my lawyer will sue your company", label="get_refund"
    )
    calm = BenchTicket(
        id="c", text="I would like to get a refund for my last order please", label="get_refund"
    )
    assert sys_.name == "classifier-rules"
    assert sys_.run(legal).route == "escalate"
    assert sys_.run(calm).route == "auto_resolve" and sys_.run(calm).llm_calls == 0
