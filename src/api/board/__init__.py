"""The review board at ``/board``: server-rendered HTML + vendored htmx on top of the service's API.

See docs/board.md. ``router`` is registered by ``src.api.app.create_app``.
"""

from src.api.board.router import router

__all__ = ["router"]
