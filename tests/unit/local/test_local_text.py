"""The rule parts, without the model: sentences, mail threads, language, cues."""

from __future__ import annotations

import pytest

from crmpilot.llm.local import cues
from crmpilot.llm.local.language import detect_language
from crmpilot.llm.local.mail import new_text_regions
from crmpilot.text import email_domain, sentences


def own_text(body: str) -> str:
    return "|".join(body[a:b].strip() for a, b in new_text_regions(body))


def test_sentences_are_verbatim_spans() -> None:
    text = (
        "Hi,\nmy order No. 12345 is late.  Where is it?\n"
        "Please check the delivery status and send me\nthe tracking number by Friday. Thanks!"
    )
    spans = sentences(text)
    assert [s.text for s in spans] == [
        "Hi,",
        "my order No. 12345 is late.",
        "Where is it?",
        "Please check the delivery status and send me\nthe tracking number by Friday.",
        "Thanks!",
    ]
    assert all(text[s.start : s.end] == s.text for s in spans)
    assert spans[3].clean == "Please check the delivery status and send me the tracking number by Friday."


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Please cancel order 7.\n-----Original Message-----\nFrom: a@b.c\nold", "Please cancel order 7."),
        (
            "Send it today.\n\n________________________________\nFrom: Billing <b@v.com>\nSent: Monday\nold",
            "Send it today.",
        ),
        ("See below.\n> Blue?\nYes, blue.\n> Size?\nM.", "See below.|Yes, blue.|M."),
        ("Fix it.\n--\nJohn\n+1 555", "Fix it."),
        ("Fix it.\n\nThanks,\nJohn", "Fix it."),
        ("Thanks, but it still fails.\nPlease help.", "Thanks, but it still fails.\nPlease help."),
        ("Hi\n\nOn Tue, 4 Mar 2025 at 09:12, Support <s@example.com>\nwrote:\n> old", "Hi"),
        ("Прошу помочь.\n\nС уважением,\nИван", "Прошу помочь."),
        ('Жду ответа.\n\n12.11.2025, 10:15, "Магазин" <shop@example.ru> пишет:\n> старое', "Жду ответа."),
        ("Antwort.\n\nAm 3. März 2025 um 10:00 schrieb Max <m@x.de>:\n> alt", "Antwort."),
    ],
)
def test_quoted_replies_and_signatures_are_cut(body: str, expected: str) -> None:
    assert own_text(body) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("My card was declined and I need help with the payment.", "en"),
        ("Моя карта заблокирована, помогите пожалуйста.", "ru"),
        ("Ich kann mich nicht anmelden, bitte helfen Sie mir.", "de"),
        ("Je ne peux pas me connecter à mon compte, merci de votre aide.", "fr"),
        ("No puedo entrar en mi cuenta, necesito ayuda por favor.", "es"),
        ("Моя картка заблокована, допоможіть.", "uk"),
        ("12345 !!!", "und"),
    ],
)
def test_language_detection(text: str, code: str) -> None:
    assert detect_language(text)[0] == code


@pytest.mark.parametrize(
    ("kind", "text", "hit"),
    [
        ("outage", "The portal is down for everyone.", "is down"),
        ("legal", "I will take legal action.", "legal action"),
        ("legal", "Подам иск в суд.", "иск"),
        ("urgent", "Срочно нужна помощь", "Срочно"),
        ("deadline", "Please reply by 12 March 2026.", "by 12 March 2026"),
        ("deadline", "Ответьте до пятницы.", "до пятницы"),
        ("junk", "This is a test, lorem ipsum.", "This is a test"),
    ],
)
def test_cues(kind: cues.CueKind, text: str, hit: str) -> None:
    first = cues.first(kind, text)
    assert first is not None and first.text == hit and text[first.start : first.end] == hit


def test_cues_do_not_fire_on_innocent_words() -> None:
    assert not cues.has("legal", "Судя по всему, заказ потерялся. I will search for it.")
    assert not cues.has("outage", "I feel a bit down today but the app works.")


@pytest.mark.parametrize(
    ("address", "domain"),
    [
        ("Ann.Lee@Acme-Tools.COM", "acme-tools.com"),
        ("Ann Lee <ann@acme.com>", "acme.com"),
        ("ann@acme.com (Ann Lee, +1 555 0100)", "acme.com"),  # the comment is not the domain
        ("mailto:ann@acme.com?subject=Hi Ann", ""),
        ("ann lee", ""),
        ("@acme.com", ""),
    ],
)
def test_only_a_plain_domain_of_an_address_is_taken(address: str, domain: str) -> None:
    assert email_domain(address) == domain
