"""Write-back to each helpdesk over real HTTP (local fake helpdesk recording the requests)."""

from __future__ import annotations

import base64

import pytest

from src.api.helpdesks import get_helpdesk
from src.api.helpdesks.base import HttpWriter, WritebackError, note_text, writeback_item
from src.config import Settings
from tests.api.fake_helpdesk import FakeHelpdesk

DECISION = {
    "route": "suggest",
    "intent": "track_order",
    "intent_probability": 0.91,
    "confidence": 0.88,
    "reasons": ["probability 0.91 below auto threshold 0.95"],
    "team": "logistics",
    "draft": "Hi Ana, your parcel 4471 is on its way.",
}
ANALYSIS = {"priority": "P2"}


@pytest.fixture()
def fake():
    server = FakeHelpdesk().start()
    yield server
    server.stop()


def settings_for(fake: FakeHelpdesk, tmp_path, **kw) -> Settings:
    return Settings(
        data_dir=tmp_path,
        zendesk_url=fake.url,
        zendesk_email="bot@example.com",
        zendesk_api_token="zd-token",
        freshdesk_url=fake.url,
        freshdesk_api_key="fd-key",
        intercom_url=fake.url,
        intercom_access_token="ic-token",
        intercom_admin_id="814860",
        helpdesk_groups={
            "zendesk": {"logistics": "360001"},
            "freshdesk": {"logistics": "77"},
            "intercom": {"logistics": "5017"},
        },
        writeback_retries=3,
        **kw,
    )


def test_note_has_draft_intent_confidence_and_reasons():
    text = note_text(DECISION)
    for part in (
        "suggest",
        "track_order",
        "0.91",
        "0.88",
        "below auto threshold",
        "your parcel 4471",
        "not sent",
    ):
        assert part in text


def test_zendesk_private_comment_tags_priority_group(fake, tmp_path):
    s = settings_for(fake, tmp_path)
    item = writeback_item("zendesk", "35436", DECISION, ANALYSIS, s)
    get_helpdesk("zendesk", s).write_back(item)
    [req] = fake.requests
    assert (req["method"], req["path"]) == ("PUT", "/api/v2/tickets/35436.json")
    ticket = req["json"]["ticket"]
    assert ticket["comment"]["public"] is False and "track_order" in ticket["comment"]["body"]
    assert ticket["additional_tags"] == ["intent__track_order", "triage__suggest"]
    assert ticket["priority"] == "high" and ticket["group_id"] == 360001
    assert req["authorization"] == "Basic " + base64.b64encode(b"bot@example.com/token:zd-token").decode()


def test_freshdesk_private_note_then_tag_union(fake, tmp_path):
    s = settings_for(fake, tmp_path)
    get_helpdesk("freshdesk", s).write_back(writeback_item("freshdesk", "812", DECISION, ANALYSIS, s))
    methods = [(r["method"], r["path"]) for r in fake.requests]
    assert methods == [
        ("POST", "/api/v2/tickets/812/notes"),
        ("GET", "/api/v2/tickets/812"),
        ("PUT", "/api/v2/tickets/812"),
    ]
    note = fake.requests[0]["json"]
    assert note["private"] is True and "track_order" in note["body"] and "<br>" in note["body"]
    update = fake.requests[2]["json"]
    assert update["tags"] == ["vip", "intent__track_order", "triage__suggest"]  # existing tag kept
    assert update["priority"] == 3 and update["group_id"] == 77
    assert fake.requests[0]["authorization"] == "Basic " + base64.b64encode(b"fd-key:X").decode()


def test_intercom_admin_note_tags_and_team(fake, tmp_path):
    s = settings_for(fake, tmp_path)
    get_helpdesk("intercom", s).write_back(writeback_item("intercom", "1911149811", DECISION, ANALYSIS, s))
    paths = [(r["method"], r["path"]) for r in fake.requests]
    assert paths[0] == ("POST", "/conversations/1911149811/reply")
    note = fake.requests[0]["json"]
    assert note["message_type"] == "note" and note["type"] == "admin" and note["admin_id"] == "814860"
    assert [r["json"]["name"] for r in fake.calls("POST", "/tags") if r["path"] == "/tags"] == [
        "intent__track_order",
        "triage__suggest",
    ]
    assert len(fake.calls("POST", "/conversations/1911149811/tags")) == 2
    [assign] = fake.calls("POST", "/parts")
    assert assign["json"]["assignee_id"] == "5017"
    assert fake.requests[0]["authorization"] == "Bearer ic-token"
    assert fake.requests[0]["headers"]["Intercom-Version"]
    assert not [
        r for r in fake.requests if (r["json"] or {}).get("message_type") == "comment"
    ]  # nothing to customer


@pytest.mark.parametrize("helpdesk", ["zendesk", "freshdesk", "intercom"])
def test_draft_reaches_the_customer_only_on_auto_resolve_with_auto_send(fake, tmp_path, helpdesk):
    auto = {**DECISION, "route": "auto_resolve"}
    off = settings_for(fake, tmp_path)
    on = settings_for(fake, tmp_path, auto_send_channels=[helpdesk])
    assert writeback_item(helpdesk, "1", auto, None, off).reply is None  # auto-send not enabled
    assert writeback_item(helpdesk, "1", DECISION, None, on).reply is None  # not auto-resolved
    assert writeback_item(helpdesk, "1", {**auto, "draft": None}, None, on).reply is None
    item = writeback_item(helpdesk, "42", auto, None, on)
    assert item.reply == auto["draft"]
    get_helpdesk(helpdesk, on).write_back(item)
    public = [
        r
        for r in fake.requests
        if ((r["json"] or {}).get("ticket", {}).get("comment", {}).get("public") is True)
        or r["path"].endswith("/reply")
        and ((r["json"] or {}).get("message_type") in (None, "comment"))
    ]
    assert len(public) == 1 and "parcel 4471" in str(public[0]["json"])


def test_retries_on_5xx_and_429_then_succeeds(fake, tmp_path):
    fake.fail_next(1, 503)
    fake.fail_next(1, 429)
    waits: list[float] = []
    http = HttpWriter(fake.url, attempts=3, sleep=waits.append)
    http.request("PUT", "/api/v2/tickets/1.json", json={"ticket": {}})
    assert [c["status"] for c in http.calls] == [503, 429, 200]
    assert waits[1] == 0.0  # Retry-After honoured


def test_gives_up_after_attempts_and_never_retries_a_4xx(fake, tmp_path):
    fake.fail_next(3, 503)
    http = HttpWriter(fake.url, attempts=3, sleep=lambda _s: None)
    with pytest.raises(WritebackError, match="gave up after 3"):
        http.request("PUT", "/api/v2/tickets/1.json", json={})
    fake.requests.clear()
    with pytest.raises(WritebackError, match="404"):
        HttpWriter(fake.url, attempts=3, sleep=lambda _s: None).request("GET", "/nope")
    assert len(fake.requests) == 1


def test_unreachable_helpdesk_is_a_writeback_error(tmp_path):
    http = HttpWriter("http://127.0.0.1:9", attempts=2, sleep=lambda _s: None, timeout_s=1)
    with pytest.raises(WritebackError, match="ConnectError"):
        http.request("GET", "/x")


def test_missing_credentials_say_which_settings(tmp_path):
    s = Settings(data_dir=tmp_path)
    for name, setting in (
        ("zendesk", "TRIAGE_ZENDESK_URL"),
        ("freshdesk", "TRIAGE_FRESHDESK_URL"),
        ("intercom", "TRIAGE_INTERCOM_ACCESS_TOKEN"),
    ):
        with pytest.raises(WritebackError, match=setting):
            get_helpdesk(name, s).write_back(writeback_item(name, "1", DECISION, None, s))
