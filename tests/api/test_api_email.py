"""The email parser on real-world MIME shapes (Gmail, Outlook, Apple Mail, forwarded, odd charsets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.api.email_intake import EmailError, message_id_of, parse_email

EMAILS = Path(__file__).parent / "emails"


def parse(name: str):
    return parse_email((EMAILS / name).read_bytes())


def test_gmail_alternative_prefers_plain_text_and_decodes_qp_and_encoded_subject():
    t = parse("gmail_alternative_qp.eml")
    assert t.channel == "email"
    assert t.id == "CAJ+8uQx3w=Zq4b5LmN1dFqk2@mail.gmail.com"
    assert t.subject == "Encomenda não chegou – order 4471"
    assert t.text.startswith("Olá, my order 4471 still hasn’t arrived. Can you track it for me? It was due")
    assert "<div" not in t.text  # the plain part, not the HTML twin
    assert t.customer == {"email": "ana.silva@gmail.com", "name": "Ana Silva"}
    assert "attachments" not in t.metadata


def test_outlook_html_only_windows_1252_becomes_text():
    t = parse("outlook_html_only_cp1252.eml")
    assert "doppelt abgebucht (2 x 49,90 €)" in t.text
    assert "zurück" in t.text and "Grüßen" in t.text
    assert "<p" not in t.text and "MsoNormal" not in t.text  # tags and the <style> block are gone
    assert t.metadata["body_source"] == "html"
    assert t.id.startswith("AM0PR04MB6755")


def test_attachments_are_listed_not_read():
    t = parse("mixed_pdf_attachment_latin1_b64.eml")
    assert t.subject == "Remboursement reçu ?"
    assert "je n'ai toujours pas reçu le remboursement" in t.text
    assert t.metadata["attachments"] == [
        {"filename": "facture_2025-10.pdf", "content_type": "application/pdf"}
    ]
    assert "JVBERi" not in t.text and "%PDF" not in t.text


def test_iso_2022_jp_subject_sender_and_body():
    t = parse("japanese_iso2022jp.eml")
    assert t.subject == "キャンセル"
    assert t.text.strip() == "注文をキャンセルしたいです。"
    assert t.customer["name"] == "山田 太郎"


def test_apple_mail_related_inline_image_listed_and_plain_body_used():
    t = parse("apple_related_inline_image.eml")
    assert t.text.strip().startswith("I forgot my password")
    assert t.metadata["attachments"] == [{"filename": "screenshot.png", "content_type": "image/png"}]


def test_forwarded_message_is_an_attachment_and_the_body_is_the_cover_text():
    t = parse("forwarded_rfc822_attachment.eml")
    assert "tracking link is broken" in t.text
    assert "Your parcel is on its way" not in t.text
    assert t.metadata["attachments"] == [{"filename": "original.eml", "content_type": "message/rfc822"}]


def test_unknown_charset_and_no_message_id_degrade_safely():
    t = parse("plain_no_message_id_bad_charset.eml")
    assert t.id is None  # -> a fresh ticket id, never a merge with someone else's ticket
    assert "refund for my last order" in t.text


def test_multipart_without_any_text_part_gives_an_empty_body_not_an_error():
    raw = (
        b"From: a@b.c\r\nSubject: pic\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: image/png\r\n"
        b"Content-Disposition: attachment; filename=a.png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"iVBORw0KGgo=\r\n--x--\r\n"
    )
    t = parse_email(raw)
    assert t.text == ""
    assert t.metadata["attachments"][0]["filename"] == "a.png"


@pytest.mark.parametrize("raw", [b"", b"   \n", b"\x00\x01\x02 binary junk", b'{"text": "json, not mail"}'])
def test_non_emails_are_rejected_with_a_reason(raw):
    with pytest.raises(EmailError, match="message"):
        parse_email(raw)


def test_message_id_normalised():
    assert message_id_of(" <abc@host> ") == "abc@host"
    assert message_id_of("<>") is None
    assert message_id_of(None) is None
