"""Fixtures for the LLM tests (helpers live in llm_wire.py so test modules can import them)."""

from llm_wire import scripted_server  # noqa: F401 - re-exported fixture
