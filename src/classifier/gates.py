"""Release gates: the minimum quality a bundle needs before anyone should serve it (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class GateConfig:
    """Thresholds from the eval pack; all configurable from the CLIs."""

    min_macro_f1: float = 0.65
    min_accuracy: float = 0.70
    min_per_class_f1: float = 0.50


@dataclass
class GateResult:
    """Whether the gates pass, and exactly what failed (failing classes named)."""

    passed: bool
    failures: list[str] = field(default_factory=list)
    failing_classes: dict[str, float] = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def check_gates(summary: dict, config: GateConfig | None = None) -> GateResult:
    """Check a :func:`~src.classifier.metrics.classification_summary` dict against the gates.

    Classes with no test support are not judged (an F1 of 0 there says nothing about the model).
    """
    cfg = config or GateConfig()
    failures: list[str] = []
    if summary["macro_f1"] < cfg.min_macro_f1:
        failures.append(f"macro_f1 {summary['macro_f1']:.4f} < {cfg.min_macro_f1}")
    if summary["accuracy"] < cfg.min_accuracy:
        failures.append(f"accuracy {summary['accuracy']:.4f} < {cfg.min_accuracy}")
    failing = {
        label: round(float(row["f1"]), 4)
        for label, row in summary["per_class"].items()
        if row.get("support", 1) > 0 and row["f1"] < cfg.min_per_class_f1
    }
    for label, f1 in sorted(failing.items(), key=lambda kv: kv[1]):
        failures.append(f"class {label!r} f1 {f1:.4f} < {cfg.min_per_class_f1}")
    return GateResult(passed=not failures, failures=failures, failing_classes=failing, config=asdict(cfg))
