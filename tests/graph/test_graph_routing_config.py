"""Team routing config: validation errors are clear startup errors; assignment is pure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from src.config import Settings
from src.graph.routing import DEFAULT_ROUTING_FILE, RoutingConfigError, load_routing

MINI = """
default_team: support
escalation_team: supervisors
sla_hours: {P1: 1, P2: 4, P3: 24, P4: 72}
teams: {support: {}, supervisors: {sla_hours: {P1: 0.5}}, billing: {}}
categories: {REFUND: {team: billing}}
intents: {get_refund: {category: REFUND}, track_order: {}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    return path


def test_shipped_config_covers_the_bitext_intents(shared_data: Path) -> None:
    release = pd.read_csv(shared_data / "bitext-customer-support" / "bitext_release_2023-08-18.csv",
                          usecols=["intent", "category"])
    config = load_routing(DEFAULT_ROUTING_FILE, labels=sorted(release["intent"].unique()))
    assert len(config.intents) == 27
    for intent, category in release.drop_duplicates("intent").itertuples(index=False):
        assert config.intents[intent].category == category


def test_assignment_by_route_and_priority(tmp_path: Path) -> None:
    config = load_routing(_write(tmp_path, MINI))
    a = config.assign("get_refund", "suggest", "P2")
    assert (a.team, a.queue, a.sla_hours, a.category) == ("billing", "review", 4.0, "REFUND")
    assert config.assign("get_refund", "auto_resolve", None).queue == "auto_resolve"
    e = config.assign("get_refund", "escalate", "P1")
    assert (e.team, e.queue, e.sla_hours) == ("supervisors", "escalation", 0.5)
    assert config.assign("track_order", "suggest", "P4").team == "support"  # no category -> default team
    assert config.assign(None, "escalate", None).team == "supervisors"


def test_unknown_team_is_a_startup_error(tmp_path: Path) -> None:
    bad = MINI.replace("REFUND: {team: billing}", "REFUND: {team: biling}")
    with pytest.raises(RoutingConfigError, match="unknown team 'biling'"):
        load_routing(_write(tmp_path, bad))


def test_unknown_intent_is_a_startup_error(tmp_path: Path) -> None:
    with pytest.raises(RoutingConfigError, match="does not know: track_order"):
        load_routing(_write(tmp_path, MINI), labels=["get_refund", "cancel_order"])
    config = load_routing(_write(tmp_path, MINI), labels=["get_refund", "track_order", "extra"])
    assert config.check_labels(["get_refund", "track_order", "extra"]) == ["extra"]  # unrouted -> default


@pytest.mark.parametrize("text", ["teams: [unclosed", "just a string", "default_team: x\n"])
def test_malformed_files_are_clear_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(RoutingConfigError, match="routing config"):
        load_routing(_write(tmp_path, text))


def test_path_comes_from_settings(tmp_path: Path) -> None:
    path = _write(tmp_path, MINI)
    assert load_routing(settings=Settings(routing_config=path)).default_team == "support"
    with pytest.raises(RoutingConfigError, match="not found"):
        load_routing(settings=Settings(routing_config=tmp_path / "missing.yaml"))
