"""Which machine produced a number: every report states its hardware (design invariant 6)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else whatever platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def git_commit(short: bool = True) -> str:
    """The checked-out commit (with ``+dirty`` when tracked files changed), or "unknown" outside git."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        args = ["git", "rev-parse", "--short" if short else "--verify", "HEAD"]
        head = subprocess.run(args, capture_output=True, text=True, check=True, timeout=5, cwd=root).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True, timeout=10, cwd=root).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.strip() + ("+dirty" if dirty else "")
