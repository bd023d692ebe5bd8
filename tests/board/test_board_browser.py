"""The board in a real browser: Debian's chromium driven by Playwright against the service on loopback.

The service is the real app (uvicorn in a thread: real HTTP, SSE, the embedded worker threads, the
real graph, checkpointer and audit store) with fake models (``tests.board.fake_board``) so a ticket
is decided in milliseconds. Screenshots go to ``$TRIAGE_TEST_ARTIFACTS/board`` (default: the
test's tmp dir); ``docs/board.png`` is one of them.

Skips when Playwright or chromium is missing, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from src.api.app import create_app
from src.api.runtime import Runtime
from tests.api.conftest import add_key, api_settings
from tests.board import fake_board

CHROMIUM = os.environ.get("TRIAGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1366, "height": 800}  # a common laptop

EDIT = "Please cancel my order 4411, I ordered the wrong size. You can reach me at ana.lopez@example.com."
REASSIGN = "I would like to get a refund for the jacket, it arrived torn and the zip is broken."
ACCEPT = "Formal complaint: the courier left my parcel outside in the rain and the box was soaked."
ESCALATE = "This is the third time I was charged twice for one order and nobody answers my emails."
AUTO = "Hello, could you help me track my package? I would like to know when it will be delivered."
NON_LATIN = (
    "أريد إلغاء طلبي رقم ٤٤١١ لأنني طلبت المقاس الخطأ، أرجو المساعدة في أقرب وقت ممكن. "
    "注文番号4411をキャンセルしたいです。サイズを間違えて注文してしまいました。"
    "Хочу отменить заказ 4411, я ошибся с размером. Ελληνικά: θέλω να ακυρώσω την παραγγελία."
)
LONG = (
    "Complaint. "
    + "My order arrived damaged and I have been waiting for a replacement for weeks. " * 230
    + "https://example.com/"
    + "x" * 3000
)  # ~20 KB, with one 3000-character unbroken token
NEW_TEXT = "Hello, is anyone there? I still have no answer about my delivery."
SECRET_BITS = (
    "ana.lopez@example.com",
    "wrong size",
    "jacket",
    "courier",
    "charged twice",
    "track my package",
    "إلغاء",
    "キャンセル",
    "replacement for weeks",
    "anyone there",
)


def _chromium_ready() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        _missing(f"playwright is not installed ({exc}); scripts/setup.sh --dev installs it")
    if not Path(CHROMIUM).exists():
        _missing(f"no chromium at {CHROMIUM}; scripts/setup.sh --dev installs it with apt")


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {why}")
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """The app served by uvicorn on loopback in a thread, plus an API client with a key."""

    def __init__(self, tmp: Path) -> None:
        import uvicorn

        self.rt = Runtime(api_settings(tmp, service_factory="tests.board.fake_board:build"))
        self.key = add_key(self.rt, name="tester")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(runtime=self.rt),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="board-uvicorn", daemon=True)
        self.api = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def submit(self, source_id: str, text: str, channel: str = "chat", **kw: Any) -> dict[str, Any]:
        body = {"channel": channel, "id": source_id, "text": text, **kw}
        resp = self.api.post("/v1/tickets?wait=20", json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def stop(self) -> None:
        self.api.close()
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    _chromium_ready()
    saved = dict(fake_board.PROBABILITY)
    fake_board.PROBABILITY.update({"track my package": 0.97})
    svc = Service(tmp_path_factory.mktemp("board-service"))
    svc.start()
    try:
        tickets = {
            "chat:b-edit": svc.submit("b-edit", EDIT, subject="Wrong size"),
            "email:b-reassign": svc.submit("b-reassign", REASSIGN, channel="email", subject="Refund"),
            "chat:b-accept": svc.submit("b-accept", ACCEPT),
            "api:b-escalate": svc.submit("b-escalate", ESCALATE, channel="api"),
            "chat:b-auto": svc.submit("b-auto", AUTO),
            "chat:b-intl": svc.submit("b-intl", NON_LATIN),
            "email:b-long": svc.submit("b-long", LONG, channel="email", subject="Damaged order " * 20),
        }
        routes = {tid: t["decision"]["route"] for tid, t in tickets.items()}
        assert routes["chat:b-edit"] == "suggest" and routes["api:b-escalate"] == "escalate", routes
        assert routes["chat:b-auto"] == "auto_resolve", routes
        # a ticket accepted but not decided yet (not enqueued: the next sweep is an hour away)
        svc.rt.store.add_intake("chat:b-new", "chat", "b-new", {"channel": "chat", "text": NEW_TEXT})
        yield svc
    finally:
        svc.stop()
        fake_board.PROBABILITY.clear()
        fake_board.PROBABILITY.update(saved)


@pytest.fixture(scope="module")
def browser(service: Service) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("TRIAGE_TEST_ARTIFACTS")
    path = Path(root) / "board" if root else tmp_path_factory.mktemp("board-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sign_in(page: Any, service: Service, name: str = "Ana") -> None:
    page.goto(f"{service.url}/board")
    assert page.url.endswith("/board/login")
    page.fill("#key", service.key)
    page.fill("#name", name)
    page.click("button[type=submit]")
    page.wait_for_selector("#columns")
    page.wait_for_selector('#live[data-state="on"]', timeout=10_000)  # the event stream is connected


def _open(page: Any, ticket_id: str) -> None:
    page.click(f'#columns a.card[data-ticket="{ticket_id}"]')
    page.wait_for_selector(f'#detail .panel[data-ticket="{ticket_id}"]')


def _column_of(page: Any, ticket_id: str, column: str, timeout: int = 10_000) -> None:
    page.wait_for_selector(f'#columns .col-{column} [data-ticket="{ticket_id}"]', timeout=timeout)


def _no_overflow(page: Any) -> dict[str, Any]:
    """Widths that would show a broken layout: the page, the panel, the message box, any card."""
    return page.evaluate(
        """() => {
          const over = (el) => Boolean(el && el.scrollWidth > el.clientWidth + 1);
          const all = [...document.querySelectorAll('#columns .card')];
          const cards = all.filter(over).map(c => c.dataset.ticket);
          return {page: document.documentElement.scrollWidth > window.innerWidth,
                  panel: over(document.querySelector('#detail')),
                  message: over(document.querySelector('#detail .message')),
                  cards};
        }"""
    )


def test_signed_out_browser_sees_no_ticket_text(service: Service, browser: Any, artifacts: Path) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    for path in ("/board", "/board/dashboard", "/board/ticket/chat:b-edit", "/board/columns"):
        page.goto(f"{service.url}{path}")
        html = page.content()
        assert not [bit for bit in SECRET_BITS if bit in html], (path, html[:500])
    page.goto(f"{service.url}/board")
    assert page.url.endswith("/board/login") and page.is_visible("#key")
    status = page.evaluate("async () => (await fetch('/board/ticket/chat:b-edit')).status")
    assert status == 401
    page.fill("#key", "trg_0123456789ab_not-a-real-key")
    page.click("button[type=submit]")
    assert "Sign-in failed" in page.inner_text(".error")
    page.screenshot(path=str(artifacts / "signed-out.png"), caret="initial")
    context.close()


def test_agent_works_the_queues_in_the_browser(service: Service, browser: Any, artifacts: Path) -> None:
    audit = service.rt.service().deps.audit
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _sign_in(page, service)
    for tid in ("chat:b-edit", "email:b-reassign", "chat:b-accept", "email:b-long"):
        _column_of(page, tid, "suggested")
    for tid in ("api:b-escalate", "chat:b-intl"):  # intl: Arabic is not a supported language here
        _column_of(page, tid, "escalated")
    _column_of(page, "chat:b-auto", "resolved")
    _column_of(page, "chat:b-new", "new")
    assert _no_overflow(page) == {"page": False, "panel": False, "message": False, "cards": []}

    # keyboard: j selects the first card, l moves to the next column, Enter opens the selection
    page.keyboard.press("j")
    page.keyboard.press("l")
    selected = page.get_attribute("#columns .card.selected", "data-ticket")
    assert selected in ("chat:b-edit", "email:b-reassign", "chat:b-accept", "email:b-long"), selected
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#detail .panel[data-ticket="{selected}"]')

    # open a suggested ticket: the reviewer sees the customer's own text (PII unmasked) and the draft
    _open(page, "chat:b-edit")
    panel = page.text_content("#detail")
    assert "ana.lopez@example.com" in panel and "Wrong size" in panel
    assert "calibrated probability" in panel and "cancel_order" in panel
    assert "Not confident enough to answer alone" in panel  # the route's reason in plain words
    assert "Similar resolved tickets used" in panel and "kb-0" in panel
    assert "SLA due" in panel
    page.screenshot(path=str(artifacts / "board.png"), caret="initial")
    page.set_viewport_size({"width": 1440, "height": 1080})  # taller, for docs/board.png
    page.screenshot(path=str(artifacts / "board-docs.png"), caret="initial")
    page.set_viewport_size(VIEWPORT)

    # edit the draft and send it: the card moves to resolved, the audit row records the edit and who
    edited = "Hello Ana, order 4411 is cancelled; we emailed ana.lopez@example.com a confirmation."
    page.fill("#draft", edited)
    assert page.is_disabled('#detail button[value="accept"]')  # an edited draft is not "accepted"
    page.click('#detail button[value="edit"]')
    page.wait_for_selector('#detail .panel[data-ticket="chat:b-edit"][data-status="completed"]')
    assert "tester/Ana" in page.inner_text('#detail .audit li[data-action="edit"]')
    _column_of(page, "chat:b-edit", "resolved")
    [action] = audit.list_actions("chat:b-edit")
    assert action["action"] == "edit" and action["actor"] == "tester/Ana"
    assert "ana.lopez@example.com" not in action["edited_draft"]  # the audit keeps it masked
    assert page.inner_text("#detail .reply") == edited  # the reviewer sees it unmasked
    assert audit.get_decision("chat:b-edit")["status"] == "completed"

    # wrong intent + reassign: picking the intent moves the team picker to that intent's team
    _open(page, "email:b-reassign")
    page.click("#detail [data-wrong-intent]")
    page.select_option("#intent-picker", "complaint")
    assert page.input_value("#team-picker") == "customer_care"
    page.select_option("#team-picker", "billing")
    page.click('#detail button[value="reassign"]')
    page.wait_for_selector('#detail .panel[data-ticket="email:b-reassign"][data-status="completed"]')
    _column_of(page, "email:b-reassign", "resolved")
    [action] = audit.list_actions("email:b-reassign")
    assert (action["action"], action["team"], action["corrected_intent"]) == (
        "reassign",
        "billing",
        "complaint",
    )

    # keyboard: open with Enter, accept with "a"; escalate another with "x"
    page.click('#columns a.card[data-ticket="chat:b-accept"]')
    page.wait_for_selector('#detail .panel[data-ticket="chat:b-accept"]')
    page.focus('#columns a.card[data-ticket="chat:b-accept"]')
    page.keyboard.press("a")
    page.wait_for_selector('#detail .panel[data-ticket="chat:b-accept"][data-status="completed"]')
    _column_of(page, "chat:b-accept", "resolved")
    assert [a["action"] for a in audit.list_actions("chat:b-accept")] == ["accept"]
    _open(page, "email:b-long")
    page.keyboard.press("x")
    page.wait_for_selector('#detail .panel[data-ticket="email:b-long"][data-route="escalate"]')
    _column_of(page, "email:b-long", "escalated")
    assert audit.get_decision("email:b-long")["status"] == "pending_review"
    assert [a["action"] for a in audit.list_actions("email:b-long")] == ["escalate"]

    # layout: a 20 KB ticket with a 3000-character token and a non-Latin ticket break nothing
    assert len(page.inner_text("#detail .message")) >= 20_000
    assert _no_overflow(page) == {"page": False, "panel": False, "message": False, "cards": []}
    page.screenshot(path=str(artifacts / "long-ticket.png"), caret="initial")
    _open(page, "chat:b-intl")
    assert "注文番号" in page.inner_text("#detail .message")
    if not page.input_value("#draft"):
        assert page.is_disabled('#detail button[value="accept"]')  # no draft: nothing to accept
    assert _no_overflow(page) == {"page": False, "panel": False, "message": False, "cards": []}
    page.screenshot(path=str(artifacts / "non-latin.png"), caret="initial")

    # spot check of an auto-resolved ticket ("c"), then the dashboard counts it
    _open(page, "chat:b-auto")
    page.keyboard.press("c")
    page.wait_for_selector('#detail .audit li[data-action="check"]')
    assert audit.get_decision("chat:b-auto")["status"] == "auto_resolved"

    # live: a ticket submitted through the API appears without a reload (server-sent events)
    service.submit("b-live", "Please cancel my order 5522, it was a present and is no longer needed.")
    _column_of(page, "chat:b-live", "suggested", timeout=5_000)

    page.goto(f"{service.url}/board/dashboard")
    dash = page.inner_text("#dashboard")
    assert "1 of 1 correct" in dash and "Today's route mix" in dash and "Time to first action" in dash
    assert page.locator("svg.chart").count() >= 4
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True, caret="initial")

    # sign out: the sign-in page again, and nothing of the tickets
    page.click("text=Sign out")
    page.wait_for_selector("#key")
    assert not [bit for bit in SECRET_BITS if bit in page.content()]
    assert not errors, errors
    context.close()
    if os.environ.get("TRIAGE_BOARD_DOCS_SCREENSHOT"):
        shutil.copy(artifacts / "board-docs.png", os.environ["TRIAGE_BOARD_DOCS_SCREENSHOT"])
