"""PII masking: what is masked, what is not, and that the map restores the original exactly."""

from __future__ import annotations

import pytest

from src.text.pii import find_pii, iban_valid, luhn_valid, mask_pii, unmask


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("write to jane.doe+tickets@example.co.uk please", "EMAIL", "jane.doe+tickets@example.co.uk"),
        ("call me on +1 (555) 123-4567 today", "PHONE", "+1 (555) 123-4567"),
        ("my number is 07700 900123", "PHONE", "07700 900123"),
        ("card 4111 1111 1111 1111 was charged", "CARD", "4111 1111 1111 1111"),
        ("card 5500-0000-0000-0004 was charged", "CARD", "5500-0000-0000-0004"),
        ("IBAN DE89 3704 0044 0532 0130 00 for the refund", "IBAN", "DE89 3704 0044 0532 0130 00"),
        ("IBAN GB82WEST12345698765432", "IBAN", "GB82WEST12345698765432"),
        ("SSN 123-45-6789 on file", "SSN", "123-45-6789"),
        ("NI number AB123456C", "NATIONAL_ID", "AB123456C"),
        ("ship to 221B Baker Street, Apt 4 London", "ADDRESS", "221B Baker Street, Apt 4"),
    ],
)
def test_detects_each_kind(text: str, kind: str, value: str) -> None:
    masked = mask_pii(text)
    assert masked.mapping == {f"[{kind}_1]": value}
    assert value not in masked.text
    assert unmask(masked.text, masked.mapping) == text


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 was charged",  # Luhn-invalid: an order/reference number, not a card
        "order 1234567890123 shipped",
        "IBAN DE89370400440532013001 looks odd",  # mod-97 fails
        "SSN 000-12-3456 is invalid",  # area 000 never issued
        "placed on 2024-01-15 for $1,299.99",
        "Where is {{Order Number}}? Call {{Customer Support Phone Number}}",
        "",
    ],
)
def test_leaves_non_pii_alone(text: str) -> None:
    masked = mask_pii(text)
    assert masked.text == text
    assert masked.mapping == {}


def test_luhn_invalid_card_not_masked_even_partly() -> None:
    """A failed card must not be half-masked as a phone number either."""
    assert find_pii("ref 4111 1111 1111 1112 thanks") == []


def test_same_value_same_placeholder_and_round_trip() -> None:
    text = (
        "I'm a@b.com (also A2@b.com). a@b.com again; card 4111111111111111, phone +44 20 7946 0958, "
        "IBAN GB82 WEST 1234 5698 7654 32. Order {{Order Number}}."
    )
    masked = mask_pii(text)
    assert masked.text.count("[EMAIL_1]") == 2
    assert "[EMAIL_2]" in masked.text
    assert {"[CARD_1]", "[PHONE_1]", "[IBAN_1]"} <= set(masked.mapping)
    assert "{{Order Number}}" in masked.text
    assert unmask(masked.text, masked.mapping) == text


def test_unmask_handles_ten_plus_placeholders() -> None:
    text = " ".join(f"user{i}@example.com" for i in range(12))
    masked = mask_pii(text)
    assert "[EMAIL_12]" in masked.mapping
    assert unmask(masked.text, masked.mapping) == text


def test_validators() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("41111x")
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert not iban_valid("DE00 3704 0044 0532 0130 00")


def test_hostile_input_does_not_crash() -> None:
    for text in ["\x00\x01binary\xff" * 50, "<html><b>x@y.io</b></html>", "9" * 5000, "@" * 1000]:
        masked = mask_pii(text)
        assert unmask(masked.text, masked.mapping) == text
