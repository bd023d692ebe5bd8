"""The board over HTTP (ASGI TestClient, real graph and stores, fake models): sign-in and sessions, CSRF,
actions through the review API's handler, spot checks, filters, assets without a CDN."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from src.api.board import session
from src.api.board.router import STATIC_DIR, STATIC_TYPES
from src.api.board.router import router as board_router
from tests.board import fake_board

SUGGEST = "Please cancel my order 4411, I ordered the wrong size. Reach me at ana.lopez@example.com."
REFUND = "I would like to get a refund for the jacket, it arrived torn and the zip is broken."
AUTO = "Hello, could you help me track my package? I would like to know when it will be delivered."
SAME_SITE = {"Sec-Fetch-Site": "same-origin"}
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"  # htmx.org 2.0.11 dist


@pytest.fixture()
def board(make_api, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(fake_board, "PROBABILITY", {"track my package": 0.97})
    api = make_api(service_factory="tests.board.fake_board:build")
    for sid, text in (("h-1", SUGGEST), ("h-2", REFUND), ("h-3", AUTO)):
        resp = api.client.post(
            "/v1/tickets?wait=10", json={"channel": "chat", "id": sid, "text": text}, headers=api.h
        )
        assert resp.status_code == 200, resp.text
    return api


def _sign_in(api, name: str = "Ana") -> str:
    resp = api.client.post(
        "/board/login", data={"key": api.key, "name": name}, headers=SAME_SITE, follow_redirects=False
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/board"
    page = api.client.get("/board")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text)[1]


def _act(api, ticket_id: str, csrf: str, **form) -> object:
    return api.client.post(
        f"/board/ticket/{ticket_id}/review",
        data={"csrf": csrf, **form},
        headers={"X-CSRF-Token": csrf, **SAME_SITE},
    )


def test_nothing_without_a_session(board) -> None:
    client = board.client
    routes = list(board_router.routes)
    assert all(r.path.startswith("/board") for r in routes)
    open_paths = {"/board/login", "/board/static/{name}"}
    checked = 0
    for route in routes:
        if route.path in open_paths:
            continue
        url = route.path.replace("{ticket_id:path}", "chat:h-1")
        for method in route.methods - {"HEAD"}:
            resp = client.request(method, url, follow_redirects=False)
            checked += 1
            if route.path in ("/board", "/board/dashboard") and method == "GET":
                assert resp.status_code == 303 and resp.headers["location"] == "/board/login"
            elif route.path == "/board/logout":
                assert resp.status_code == 303  # signing out without a session is harmless
            else:
                assert resp.status_code == 401, (method, url, resp.status_code)
            assert "ana.lopez" not in resp.text and "jacket" not in resp.text
    assert checked >= 8
    htmx = client.get("/board/columns", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/board/login"
    login = client.get("/board/login")
    assert login.status_code == 200 and "API key" in login.text and "ana.lopez" not in login.text


def test_session_cookie_holds_no_key_and_ends_with_the_key(board, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = board.client.post("/board/login", data={"key": "trg_0123456789ab_wrong"}, headers=SAME_SITE)
    assert bad.status_code == 401 and "invalid API key" in bad.text and "set-cookie" not in bad.headers
    resp = board.client.post(
        "/board/login", data={"key": board.key, "name": "Ana"}, headers=SAME_SITE, follow_redirects=False
    )
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/board" in cookie
    assert board.key.split("_")[2] not in cookie  # the secret never leaves the sign-in request
    assert "ana.lopez" in board.client.get("/board/ticket/chat:h-1").text  # signed in: the reviewer sees PII

    # a forged or altered cookie is no session
    value = board.client.cookies.get(session.COOKIE)

    def use(cookie: str) -> None:
        board.client.cookies.clear()
        board.client.cookies.set(session.COOKIE, cookie, domain="testserver.local", path="/board")

    use(value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert board.client.get("/board", follow_redirects=False).status_code == 303
    use(value)
    assert board.client.get("/board").status_code == 200
    # expired
    monkeypatch.setattr(session, "SESSION_MAX_AGE_S", -1)
    assert board.client.get("/board", follow_redirects=False).status_code == 303
    monkeypatch.setattr(session, "SESSION_MAX_AGE_S", 3600)
    # revoking the API key ends its board sessions at once
    assert board.rt.store.revoke_key(board.key.split("_")[1])
    assert board.client.get("/board", follow_redirects=False).status_code == 303
    assert board.client.get("/board/ticket/chat:h-1").status_code == 401


def test_csrf_and_cross_site_requests_are_refused(board) -> None:
    cross = board.client.post(
        "/board/login", data={"key": board.key}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403
    other_origin = board.client.post(
        "/board/login", data={"key": board.key}, headers={"Origin": "https://evil.example"}
    )
    assert other_origin.status_code == 403
    csrf = _sign_in(board)
    no_token = board.client.post(
        "/board/ticket/chat:h-1/review", data={"action": "accept"}, headers=SAME_SITE
    )
    assert no_token.status_code == 403
    wrong = _act(board, "chat:h-1", "x" * len(csrf), action="accept")
    assert wrong.status_code == 403
    cross_site = board.client.post(
        "/board/ticket/chat:h-1/review",
        data={"action": "accept", "csrf": csrf},
        headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-site"},
    )
    assert cross_site.status_code == 403
    assert board.rt.service().deps.audit.list_actions("chat:h-1") == []


def test_actions_go_through_the_review_api_and_are_audited(board) -> None:
    csrf = _sign_in(board)
    audit = board.rt.service().deps.audit
    page = board.client.get("/board/ticket/chat:h-1").text
    action_id = re.search(r'name="action_id" value="([0-9a-f]+)"', page)[1]
    empty = _act(board, "chat:h-1", csrf, action="respond", own_text="  ", action_id=action_id)
    assert empty.status_code == 422 and "non-empty text" in empty.text and 'class="error"' in empty.text
    bad_team = _act(board, "chat:h-1", csrf, action="reassign", team="nobody", action_id=action_id)
    assert bad_team.status_code == 422 and "unknown team" in bad_team.text
    ok = _act(
        board,
        "chat:h-1",
        csrf,
        action="respond",
        own_text="Cancelled, Ana.",
        text="ignored draft",
        intent="cancel_order",
        action_id=action_id,
    )
    assert ok.status_code == 200 and ok.headers["HX-Trigger"] == "board-changed"
    assert 'data-status="completed"' in ok.text and "Cancelled, Ana." in ok.text
    again = _act(board, "chat:h-1", csrf, action="respond", own_text="Cancelled, Ana.", action_id=action_id)
    assert again.status_code == 200  # a double click: the same action id, nothing recorded twice
    [row] = audit.list_actions("chat:h-1")
    assert (row["action"], row["actor"], row["edited_draft"]) == ("respond", "tester/Ana", "Cancelled, Ana.")
    # the board's actions are the API's: the review event went out, the intake row follows
    assert board.rt.store.get_intake("chat:h-1").status == "completed"

    esc = _act(board, "chat:h-2", csrf, action="escalate", note="VIP customer")
    assert esc.status_code == 200 and 'data-route="escalate"' in esc.text and "VIP customer" in esc.text
    columns = board.client.get("/board/columns").text
    escalated = columns[columns.index('data-column="escalated"') : columns.index('data-column="resolved"')]
    assert 'data-ticket="chat:h-2"' in escalated
    assert 'name="bad_example"' in esc.text  # the reviewer can keep a ticket out of training and the KB
    ignore = _act(board, "chat:h-2", csrf, action="ignore", bad_example="1")
    assert ignore.status_code == 200 and "closed without reply" in ignore.text
    assert [a["action"] for a in audit.list_actions("chat:h-2")] == ["escalate", "ignore"]
    assert [a["bad_example"] for a in audit.list_actions("chat:h-2")] == [False, True]
    assert not row["bad_example"]  # unchecked box: an ordinary example

    # the key's own name as reviewer: recorded once, not "tester/tester"
    board.client.post("/board/logout", data={"csrf": csrf}, headers=SAME_SITE)
    csrf = _sign_in(board, name="")
    assert board.client.get("/board").text.count("Signed in as <b>tester</b>") == 1


def test_spot_checks_of_auto_resolved_tickets(board) -> None:
    csrf = _sign_in(board)
    audit = board.rt.service().deps.audit
    post = lambda tid, **form: board.client.post(  # noqa: E731
        f"/board/ticket/{tid}/check", data={"csrf": csrf, **form}, headers={"X-CSRF-Token": csrf, **SAME_SITE}
    )
    not_auto = post("chat:h-1", verdict="correct")
    assert not_auto.status_code == 422 and "only auto-resolved" in not_auto.text
    assert post("chat:h-3", verdict="maybe").status_code == 422
    wrong = post("chat:h-3", verdict="wrong", intent="get_refund", note="asked about a refund")
    assert wrong.status_code == 200 and 'data-action="check"' in wrong.text
    [row] = audit.list_actions("chat:h-3")
    assert (row["note"], row["corrected_intent"], row["actor"]) == (
        "wrong: asked about a refund",
        "get_refund",
        "tester/Ana",
    )
    assert audit.get_decision("chat:h-3")["status"] == "auto_resolved"
    post("chat:h-3", verdict="correct")  # changed their mind: the latest check per ticket counts
    dash = board.client.get("/board/dashboard").text
    assert "1 of 1 correct" in dash and "Today's route mix" in dash


def test_filters_narrow_the_columns(board) -> None:
    _sign_in(board)
    billing = board.client.get("/board/columns?team=billing").text
    assert 'data-ticket="chat:h-2"' in billing and 'data-ticket="chat:h-1"' not in billing
    assert 'data-ticket="chat:h-3"' not in board.client.get("/board/columns?channel=email").text
    assert 'data-ticket="chat:h-1"' not in board.client.get("/board/columns?sla=overdue").text
    assert "nothing matches the filters" in board.client.get("/board/columns?intent=none-such").text
    # nonsense values are ignored, never an error
    assert board.client.get("/board/columns?priority=P9&sla=x&team=%00").status_code == 200


def test_assets_are_served_by_the_app_under_a_strict_csp(board) -> None:
    _sign_in(board)
    page = board.client.get("/board")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert page.headers["Cache-Control"] == "no-store"
    texts = [
        page.text,
        board.client.get("/board/dashboard").text,
        board.client.get("/board/ticket/chat:h-1").text,
    ]
    for name, media in STATIC_TYPES.items():
        resp = board.client.get(f"/board/static/{name}")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(media)
        texts.append(resp.text if name != "htmx.min.js" else "")
    for text in texts:  # nothing is loaded from another host (no CDN) and no inline script or style
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
        assert "<script>" not in text and " style=" not in text
    assert board.client.get("/board/static/../router.py").status_code == 404
    assert board.client.get("/board/static/nope.js").status_code == 404
    vendored = (STATIC_DIR / "htmx.min.js").read_bytes()
    assert hashlib.sha256(vendored).hexdigest() == HTMX_SHA256  # the file VENDORED.md names
    assert HTMX_SHA256 in (Path(STATIC_DIR) / "VENDORED.md").read_text()
