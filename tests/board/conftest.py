"""Board test fixtures: the API fixtures (a runtime on the real graph with fake models, keys)."""

from tests.api.conftest import make_api  # noqa: F401
