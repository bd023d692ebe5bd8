"""Small charts as inline SVG, rendered on the server (pure): no chart library, no CDN, no script.

Inline SVG needs nothing at run time, prints, scales with the page, and passes a strict
Content-Security-Policy (presentation attributes, no ``style`` attributes). Every chart carries an
``aria-label`` with its numbers, so the data is readable without seeing the picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

WIDTH = 380
LABEL_W = 112
ROW_H = 24
BAR_H = 15


def _fmt_default(value: float) -> str:
    return f"{value:g}"


def bar_chart(
    rows: Sequence[tuple[str, float]],
    *,
    title: str,
    fmt: Callable[[float], str] = _fmt_default,
    css: Sequence[str] | None = None,
) -> Markup:
    """Horizontal bars, one per (label, value); zero-safe (all-zero data draws empty tracks)."""
    top = max([v for _, v in rows] + [0.0])
    plot_w = WIDTH - LABEL_W - 56
    height = ROW_H * max(1, len(rows)) + 4
    summary = "; ".join(f"{label}: {fmt(v)}" for label, v in rows) or "no data"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img"'
        f' aria-label="{escape(title)}: {escape(summary)}" preserveAspectRatio="xMinYMin meet">'
    ]
    for i, (label, value) in enumerate(rows):
        y = i * ROW_H + 4
        w = 0.0 if top <= 0 else plot_w * float(value) / top
        klass = css[i] if css and i < len(css) else "bar"
        parts.append(
            f'<text x="{LABEL_W - 6}" y="{y + BAR_H - 3}" text-anchor="end" class="chart-label">'
            f"{escape(label)}</text>"
            f'<rect x="{LABEL_W}" y="{y}" width="{plot_w}" height="{BAR_H}" class="track"/>'
            f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{BAR_H}" class="{escape(klass)}"/>'
            f'<text x="{LABEL_W + w + 5:.1f}" y="{y + BAR_H - 3}" class="chart-value">'
            f"{escape(fmt(value))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def interval_chart(value: float | None, low: float | None, high: float | None, *, title: str) -> Markup:
    """A 0–100 % axis with the point estimate and its confidence interval (empty when no data)."""
    x0, x1, height = 16, WIDTH - 22, 46
    scale = x1 - x0

    def x(p: float) -> float:
        return x0 + scale * max(0.0, min(1.0, p))

    if value is None or low is None or high is None:
        label = f"{title}: no data yet"
        body = f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" class="chart-label">no data yet</text>'
    else:
        label = f"{title}: {value:.1%} (95% interval {low:.1%}–{high:.1%})"
        body = (
            f'<rect x="{x(low):.1f}" y="8" width="{max(1.0, x(high) - x(low)):.1f}" height="14" class="ci"/>'
            f'<line x1="{x(value):.1f}" x2="{x(value):.1f}" y1="4" y2="26" class="point"/>'
        )
    ticks = "".join(
        f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="26" y2="30" class="axis"/>'
        f'<text x="{x(t):.1f}" y="42" text-anchor="middle" class="chart-tick">{int(t * 100)}%</text>'
        for t in (0.0, 0.25, 0.5, 0.75, 1.0)
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img"'
        f' aria-label="{escape(label)}"><line x1="{x0}" x2="{x1}" y1="26" y2="26" class="axis"/>'
        f"{body}{ticks}</svg>"
    )


def meter(value: float | None, *, label: str) -> Markup:
    """A thin 0–1 bar (a probability next to an intent name)."""
    w = 0.0 if value is None else 100.0 * max(0.0, min(1.0, float(value)))
    return Markup(
        f'<svg class="meter" viewBox="0 0 100 6" preserveAspectRatio="none" role="img"'
        f' aria-label="{escape(label)}"><rect width="100" height="6" class="track"/>'
        f'<rect width="{w:.1f}" height="6" class="bar"/></svg>'
    )
