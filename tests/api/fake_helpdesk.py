"""A local fake helpdesk over real HTTP: answers Zendesk / Freshdesk / Intercom write-back calls with
their documented response shapes and records every request (method, path, auth header, JSON body).

``fail_next(n, status)`` makes the next n requests fail (503/429) to exercise the client's retries.
Run standalone for manual checks: ``python tests/api/fake_helpdesk.py --port 8099``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeHelpdesk:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self._fail: list[int] = []
        self._lock = threading.Lock()
        self.tags: dict[str, list[str]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with outer._lock:
                    outer.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "json": body,
                            "authorization": self.headers.get("Authorization"),
                            "headers": dict(self.headers.items()),
                        }
                    )
                    fail = outer._fail.pop(0) if outer._fail else None
                if fail:
                    self._send(fail, {"error": "injected"}, retry_after="0" if fail == 429 else None)
                    return
                status, payload = outer.respond(self.command, self.path, body)
                self._send(status, payload)

            def _send(self, status: int, payload: Any, retry_after: str | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle  # noqa: N815

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> FakeHelpdesk:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, n: int, status: int = 503) -> None:
        with self._lock:
            self._fail.extend([status] * n)

    def respond(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """Documented response shapes (trimmed) for the calls the adapters make."""
        if m := re.fullmatch(r"/api/v2/tickets/(\w+)\.json", path):  # Zendesk update ticket
            ticket = {
                "id": int(m.group(1)) if m.group(1).isdigit() else m.group(1),
                **(body or {}).get("ticket", {}),
            }
            return 200, {"ticket": ticket, "audit": {"id": 1}}
        if m := re.fullmatch(r"/api/v2/tickets/(\w+)/notes", path):  # Freshdesk create note
            return 201, {
                "id": 5001,
                "ticket_id": int(m.group(1)),
                "private": (body or {}).get("private"),
                "body": (body or {}).get("body"),
            }
        if m := re.fullmatch(r"/api/v2/tickets/(\w+)/reply", path):
            return 201, {"id": 5002, "ticket_id": int(m.group(1)), "body": (body or {}).get("body")}
        if m := re.fullmatch(r"/api/v2/tickets/(\w+)", path):  # Freshdesk view / update ticket
            tid = m.group(1)
            if method == "PUT":
                self.tags[tid] = list((body or {}).get("tags") or self.tags.get(tid, []))
                return 200, {"id": int(tid), **(body or {})}
            return 200, {"id": int(tid), "tags": self.tags.get(tid, ["vip"]), "priority": 1}
        if path == "/tags":  # Intercom create-or-update tag
            return 200, {
                "type": "tag",
                "id": str(abs(hash((body or {}).get("name"))) % 100000),
                "name": body["name"],
            }
        if re.fullmatch(r"/conversations/\w+/(reply|tags|parts)", path):
            return 200, {"type": "conversation", "id": path.split("/")[2]}
        return 404, {"error": f"fake helpdesk: no route {method} {path}"}

    def calls(self, method: str | None = None, contains: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r["method"] == method) and contains in r["path"]
            ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Run the fake helpdesk (records write-back calls)")
    ap.add_argument("--port", type=int, default=8099)
    args = ap.parse_args()
    fake = FakeHelpdesk(port=args.port)
    print(f"fake helpdesk on {fake.url}")
    fake.server.serve_forever()
