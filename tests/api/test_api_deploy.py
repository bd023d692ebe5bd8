"""The deployment files say what docs/service.md promises (no Docker engine here to run them)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_has_the_stack_with_healthchecks_and_no_inline_secrets():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"api", "worker", "redis", "qdrant", "postgres"}
    for name, svc in services.items():
        assert "healthcheck" in svc, name
        env = svc.get("environment") or {}
        for key, value in env.items():
            assert not re.search(r"(PASSWORD|SECRET|TOKEN|PEPPER|KEY)", key), f"{name}: {key} inline"
            assert "@" not in str(value), f"{name}: credentials in {key}"
    assert services["postgres"]["env_file"] == ["deploy/postgres.env"]
    assert services["api"]["env_file"] == services["worker"]["env_file"] == ["deploy/triage.env"]
    assert services["worker"]["command"][:3] == ["python", "-m", "src.api.worker"]
    assert services["api"]["command"][:3] == ["python", "-m", "src.api"]
    assert "deploy/*.env" in (ROOT / ".gitignore").read_text()


def test_dockerfile_is_multi_stage_and_non_root():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2 and "COPY --from=build" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in text
