"""PII redaction: what is found, what is left alone, and that placeholders are stable and reversible."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmpilot.privacy import Redactor, iban_ok, luhn_ok

R = Redactor()


def _luhn_complete(prefix: str) -> str:
    for d in "0123456789":
        if luhn_ok(prefix + d):
            return prefix + d
    raise AssertionError


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("mail jane.roe+crm@sub.example.co.uk now", "EMAIL"),
        ("card 4111-1111-1111-1111 please", "CARD"),
        ("card 5500 0000 0000 0004.", "CARD"),
        ("amex 378282246310005", "CARD"),
        ("iban DE89 3704 0044 0532 0130 00 thanks", "IBAN"),
        ("iban FR1420041010050500013M02606", "IBAN"),
        ("call +1 (415) 555-0132", "PHONE"),
        ("call 0044 20 7946 0958", "PHONE"),
        ("call (555) 123-4567", "PHONE"),
        ("call 030 1234 5678", "PHONE"),
        ("call 06 12 34 56 78", "PHONE"),
        ("ssn 123-45-6789", "SSN"),
        ("from 192.168.10.23", "IP"),
    ],
)
def test_detects(text: str, kind: str) -> None:
    red = R.redact(text)
    assert f"<{kind}_1>" in red.payload, red.payload
    assert red.counts == {kind: 1}
    assert red.restore(red.payload) == text


@pytest.mark.parametrize(
    "text",
    [
        "order 12345 shipped on 2024-01-15",
        "total 1,234.56 EUR on 15.01.2024",
        "version 2.3 build 4411",
        "4111 1111 1111 1112 is not a valid card",  # fails Luhn (and has spaces, 16 digits → not a phone)
        "DE00 3704 0044 0532 0130 00 fails mod-97",
        "ticket #4521 priority 2",
    ],
)
def test_leaves_ordinary_numbers_alone(text: str) -> None:
    red = R.redact(text)
    assert red.payload == text and not red.counts


def test_same_value_same_placeholder_across_the_payload() -> None:
    red = R.redact({"a": "write to a@example.com", "b": ["cc a@example.com", {"c": "and b@example.com"}], "n": 3})
    assert red.payload == {"a": "write to <EMAIL_1>", "b": ["cc <EMAIL_1>", {"c": "and <EMAIL_2>"}], "n": 3}
    assert red.counts == {"EMAIL": 2}


def test_another_spelling_gets_its_own_placeholder_so_each_comes_back_exactly_as_written() -> None:
    red = R.redact("From MRyanTaber@nyiso.com: call me, or mail mryantaber@nyiso.com")
    assert red.payload == "From <EMAIL_1>: call me, or mail <EMAIL_2>"
    assert (
        red.restore("mail <EMAIL_2>") == "mail mryantaber@nyiso.com"
        and red.restore("<EMAIL_1>") == "MRyanTaber@nyiso.com"
    )


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765431")


_filler = st.text(alphabet=string.ascii_letters + " ,.!?\n", max_size=40)
_local = st.text(alphabet=string.ascii_lowercase + string.digits + "._", min_size=1, max_size=12).filter(
    lambda s: s[0] not in "._" and s[-1] not in "._"
)
_emails = st.builds(
    lambda local, d, t: f"{local}@{d}.{t}",
    _local,
    st.text(string.ascii_lowercase, min_size=2, max_size=10),
    st.sampled_from(["com", "org", "de", "co.uk"]),
)
_cards = st.builds(
    lambda p, body, sep: sep.join(_chunks(_luhn_complete(p + body))),
    st.sampled_from(["4", "51", "55", "37", "6011"]),
    st.text(alphabet=string.digits, min_size=11, max_size=11),
    st.sampled_from(["", " ", "-"]),
)
_phones = st.builds(
    lambda cc, a, b, c, sep: f"+{cc}{sep}{a}{sep}{b}{sep}{c}",
    st.integers(1, 99),
    st.integers(10, 999),
    st.integers(100, 9999),
    st.integers(1000, 9999),
    st.sampled_from([" ", "-", "."]),
)


def _chunks(digits: str) -> list[str]:
    return [digits[i : i + 4] for i in range(0, len(digits), 4)]


@settings(max_examples=150, deadline=None)
@given(before=_filler, after=_filler, email=_emails, card=_cards, phone=_phones)
def test_planted_pii_never_survives(before: str, after: str, email: str, card: str, phone: str) -> None:
    text = f"{before} {email} {after} card {card}; phone {phone} {before}"
    red = R.redact({"t": text})
    out = red.payload["t"]
    assert email not in out and card not in out and phone not in out
    assert red.restore(out) == text
