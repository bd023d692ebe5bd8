"""Team routing config: intent -> category -> team, escalation team, SLA hours per priority.

Loaded from YAML and validated with pydantic at startup: a route that names an unknown
team, or an intent the classifier bundle does not know, is a configuration error with a clear
message — not a ticket silently sent nowhere at 3 a.m.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from src.config import PROJECT_ROOT, Settings, get_settings

Priority = Literal["P1", "P2", "P3", "P4"]
DEFAULT_ROUTING_FILE = PROJECT_ROOT / "config" / "routing.yaml"
DEFAULT_SLA: dict[str, float] = {"P1": 1, "P2": 4, "P3": 24, "P4": 72}


class RoutingConfigError(ValueError):
    """The routing file is missing, malformed, or inconsistent with the teams / classifier labels."""


class Team(BaseModel):
    description: str = ""
    sla_hours: dict[Priority, float] | None = None


class CategoryRoute(BaseModel):
    team: str
    escalation_team: str | None = None
    sla_hours: dict[Priority, float] | None = None


class IntentRoute(BaseModel):
    category: str | None = None
    team: str | None = None
    escalation_team: str | None = None


class Assignment(BaseModel):
    """Where one decided ticket goes."""

    team: str
    queue: Literal["auto_resolve", "review", "escalation"]
    sla_hours: float
    category: str | None = None


class RoutingConfig(BaseModel):
    version: int = 1
    default_team: str
    escalation_team: str
    sla_hours: dict[Priority, float] = Field(default_factory=lambda: dict(DEFAULT_SLA))
    teams: dict[str, Team]
    categories: dict[str, CategoryRoute] = Field(default_factory=dict)
    intents: dict[str, IntentRoute] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _teams_exist(self) -> RoutingConfig:
        problems: list[str] = []

        def check(team: str | None, where: str) -> None:
            if team is not None and team not in self.teams:
                problems.append(f"{where} names unknown team {team!r}")

        check(self.default_team, "default_team")
        check(self.escalation_team, "escalation_team")
        for name, cat in self.categories.items():
            check(cat.team, f"category {name}")
            check(cat.escalation_team, f"category {name} escalation_team")
        for name, route in self.intents.items():
            check(route.team, f"intent {name}")
            check(route.escalation_team, f"intent {name} escalation_team")
            if route.category is not None and route.category not in self.categories:
                problems.append(f"intent {name} names unknown category {route.category!r}")
        if problems:
            raise ValueError("; ".join(problems) + f" (known teams: {', '.join(sorted(self.teams))})")
        return self

    def check_labels(self, labels: list[str]) -> list[str]:
        """Raise if the config routes intents the classifier cannot predict; return unrouted labels."""
        unknown = sorted(set(self.intents) - set(labels))
        if unknown:
            raise RoutingConfigError(
                f"routing config names intents the classifier bundle does not know: {', '.join(unknown)} "
                f"(bundle labels: {', '.join(sorted(labels)[:10])}{'...' if len(labels) > 10 else ''})"
            )
        return sorted(set(labels) - set(self.intents))

    def category_of(self, intent: str | None) -> str | None:
        route = self.intents.get(intent or "")
        return route.category if route else None

    def assign(self, intent: str | None, route: str, priority: str | None = None) -> Assignment:
        """Team, queue and SLA for a decided ticket (pure)."""
        iroute = self.intents.get(intent or "") or IntentRoute()
        cat = self.categories.get(iroute.category or "")
        if route == "escalate":
            team = iroute.escalation_team or (cat.escalation_team if cat else None) or self.escalation_team
            queue: Literal["auto_resolve", "review", "escalation"] = "escalation"
        else:
            team = iroute.team or (cat.team if cat else None) or self.default_team
            queue = "auto_resolve" if route == "auto_resolve" else "review"
        prio = priority if priority in DEFAULT_SLA else "P3"
        sla_table = dict(self.sla_hours)
        if cat and cat.sla_hours:
            sla_table.update(cat.sla_hours)
        if self.teams[team].sla_hours:
            sla_table.update(self.teams[team].sla_hours or {})
        return Assignment(team=team, queue=queue, sla_hours=float(sla_table.get(prio, DEFAULT_SLA[prio])),
                          category=iroute.category)


def load_routing(path: Path | str | None = None, *, labels: list[str] | None = None,
                 settings: Settings | None = None) -> RoutingConfig:
    """Read + validate the routing file (``Settings.routing_config`` or the shipped default)."""
    if path is None:
        settings = settings or get_settings()
        path = settings.routing_config or DEFAULT_ROUTING_FILE
    path = Path(path)
    if not path.is_file():
        raise RoutingConfigError(f"routing config not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RoutingConfigError(f"routing config {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise RoutingConfigError(f"routing config {path} must be a mapping at the top level")
    try:
        config = RoutingConfig.model_validate(raw)
    except ValidationError as exc:
        raise RoutingConfigError(f"routing config {path} is invalid: {exc}") from exc
    if labels is not None:
        config.check_labels(labels)
    return config
