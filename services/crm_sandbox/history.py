"""The demo org's history: closed cases with the category an agent settled on.

An org that has run support for a while has hundreds of closed cases, each
with its final category; ``crmpilot train --soql`` learns the org's own way of
filing tickets from them (as Einstein Case Classification does) before any new
case is classified. These are written for the demo: per category, a few ways
customers put each problem, in English, German, Spanish and Russian (the
languages of the demo's open cases), combined with an opening, a detail and a
closing, and filled with order numbers, amounts and dates. The generator is
seeded, so every sandbox holds the same history (same ids, same text).

None of the demo's open cases is in here: the history says the same things in
other words, as an org's old tickets do.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from .ids import make_id

__all__ = ["HISTORY_SIZE", "history_records"]

HISTORY_SIZE = 480
"""Closed cases the demo org carries: 40 per category of the default taxonomy."""

_Lang = str
# category -> language -> (subjects, problems); a problem is the sentence that says what is wrong
_TOPICS: Mapping[str, Mapping[_Lang, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "Billing": {
        "en": (
            ("Invoice {order} is wrong", "Question about my bill", "Overcharged this month", "Fee I don't understand",
             "Subscription price went up", "Invoice shows the wrong plan"),
            ("My invoice {order} lists {amount} but my plan costs less.",
             "I was charged a service fee of {amount} that nobody told me about.",
             "The monthly statement shows two subscriptions although I only have one.",
             "Your invoice for {month} still has my old company name and address on it.",
             "The price of my subscription went from 29 to {amount} without notice.",
             "Could you explain the extra line 'account maintenance' on my last bill?",
             "The invoice PDF for {month} is missing, only the summary was sent."),
        ),
        "de": (("Rechnung {order} fehlerhaft", "Frage zu meiner Abrechnung"),
               ("Auf der Rechnung {order} steht ein Betrag von {amount}, das ist zu viel.",
                "Mir wurde eine Gebühr berechnet, die ich nicht verstehe.")),
        "es": (("Factura {order} incorrecta", "Duda sobre mi factura"),
               ("En la factura {order} me cobran {amount}, más de lo acordado.",
                "No entiendo el cargo adicional que aparece en mi factura de {month}.")),
        "ru": (("Ошибка в счёте {order}", "Вопрос по счёту"),
               ("В счёте {order} указана сумма {amount}, это больше тарифа.",
                "Мне выставили комиссию, о которой никто не предупреждал.")),
    },
    "Payments": {
        "en": (
            ("Payment failed", "Card declined again", "Transfer still pending", "Direct debit did not go through",
             "Cannot top up my account", "Payment stuck in processing"),
            ("My card was declined three times when I tried to pay {amount}.",
             "I sent a bank transfer on {date} and it still shows as pending.",
             "The direct debit for {month} bounced although the money was on my account.",
             "Topping up with my debit card fails with 'payment not authorised'.",
             "The payment page times out every time I enter my card details.",
             "Apple Pay is refused at checkout while the same card works elsewhere.",
             "My payment of {amount} left my bank account but your system says unpaid."),
        ),
        "de": (("Zahlung fehlgeschlagen", "Überweisung hängt"),
               ("Meine Kartenzahlung über {amount} wird immer abgelehnt.",
                "Die Überweisung vom {date} ist immer noch nicht gutgeschrieben.")),
        "es": (("Pago rechazado", "Transferencia pendiente"),
               ("Mi tarjeta es rechazada cada vez que intento pagar {amount}.",
                "Hice una transferencia el {date} y sigue pendiente.")),
        "ru": (("Платёж не прошёл", "Перевод завис"),
               ("Оплата картой на {amount} постоянно отклоняется.",
                "Перевод от {date} до сих пор в статусе ожидания.")),
    },
    "Refund": {
        "en": (
            ("Refund not received", "Where is my money back?", "Request a refund", "Refund for order {order}",
             "Still waiting for reimbursement"),
            ("I returned order {order} on {date} and have not received my refund yet.",
             "Please refund the {amount} for the item I sent back.",
             "You promised a reimbursement two weeks ago and nothing has arrived.",
             "I cancelled within the trial period, so I want my money back.",
             "The refund for the damaged {product} was approved but never paid out.",
             "Can you return the payment of {amount} to my credit card?"),
        ),
        "de": (("Erstattung fehlt", "Geld zurück für Bestellung {order}"),
               ("Ich habe die Bestellung {order} zurückgeschickt, aber noch kein Geld erhalten.",
                "Bitte erstatten Sie mir die {amount} für den defekten Artikel.")),
        "es": (("Reembolso pendiente", "Quiero mi dinero de vuelta"),
               ("Devolví el pedido {order} el {date} y todavía no tengo el reembolso.",
                "Por favor, devuélvanme los {amount} del producto devuelto.")),
        "ru": (("Не вернули деньги", "Возврат по заказу {order}"),
               ("Я вернул заказ {order}, но деньги так и не пришли.",
                "Прошу вернуть {amount} за бракованный товар.")),
    },
    "Account Access": {
        "en": (
            ("Cannot log in", "Account locked", "Password reset not working", "No verification code",
             "Locked out of my account", "Two-factor problem"),
            ("I cannot log in since this morning, it says my password is wrong.",
             "My account got locked after three attempts and the unlock link has expired.",
             "The password reset email never arrives, I checked the spam folder too.",
             "I changed my phone and now I do not get the two-factor codes any more.",
             "The verification code I receive is rejected as invalid every time.",
             "After the update the app logs me out and I cannot sign in again."),
        ),
        "de": (("Login nicht möglich", "Konto gesperrt"),
               ("Ich kann mich seit gestern nicht mehr anmelden, mein Konto ist gesperrt.",
                "Der Bestätigungscode per SMS kommt nicht an.")),
        "es": (("No puedo iniciar sesión", "Cuenta bloqueada"),
               ("No puedo entrar en mi cuenta, dice que la contraseña es incorrecta.",
                "No me llega el código de verificación por SMS.")),
        "ru": (("Не могу войти", "Аккаунт заблокирован"),
               ("Не могу войти в личный кабинет, пишет неверный пароль.",
                "Не приходит код подтверждения по SMS.")),
    },
    "Technical Issue": {
        "en": (
            ("App keeps crashing", "Error message on the website", "Website not loading", "Integration broken",
             "Sync fails with an error", "Dashboard is very slow"),
            ("The iOS app crashes as soon as I open the settings page.",
             "I get 'Error 503 service unavailable' when I open the dashboard.",
             "Your website has been extremely slow all day, pages take a minute to load.",
             "Our webhook integration stopped receiving events on {date}.",
             "The export to CSV fails with an internal error every time.",
             "The API returns a timeout for every request since the maintenance window.",
             "Reports do not load in Chrome, the page stays blank."),
        ),
        "de": (("App stürzt ab", "Fehlermeldung beim Export"),
               ("Die App stürzt beim Öffnen der Einstellungen jedes Mal ab.",
                "Beim Export erscheint die Fehlermeldung 'interner Serverfehler'.")),
        "es": (("La aplicación se cierra", "Error en la web"),
               ("La aplicación se cierra sola al abrir el historial.",
                "La página da un error 500 cada vez que intento guardar.")),
        "ru": (("Приложение вылетает", "Ошибка на сайте"),
               ("Приложение закрывается при открытии раздела настроек.",
                "Сайт выдаёт ошибку 500 при сохранении данных.")),
    },
    "Shipping & Delivery": {
        "en": (
            ("Order {order} not delivered", "Parcel lost", "Where is my package?", "Tracking not updating",
             "Late delivery", "Delivered to the wrong address"),
            ("My order {order} was supposed to arrive on {date} but it has not come.",
             "The tracking has not updated for six days, the parcel seems lost.",
             "The courier marked the package as delivered but I never received it.",
             "The {product} was sent to my old address even though I updated it.",
             "Delivery is already a week late and nobody answers the phone.",
             "Only one of the two boxes of order {order} arrived."),
        ),
        "de": (("Paket nicht angekommen", "Lieferung verspätet"),
               ("Meine Bestellung {order} sollte am {date} kommen, ist aber nicht da.",
                "Die Sendungsverfolgung zeigt seit Tagen keinen Fortschritt.")),
        "es": (("Pedido no entregado", "Paquete perdido"),
               ("Mi pedido {order} debía llegar el {date} y no ha llegado.",
                "El seguimiento no se actualiza desde hace una semana.")),
        "ru": (("Заказ не доставлен", "Посылка потерялась"),
               ("Заказ {order} должен был прийти {date}, но его нет.",
                "Трекинг не обновляется уже неделю.")),
    },
    "Order Change": {
        "en": (
            ("Change my order", "Modify order {order}", "Update delivery date", "Wrong quantity ordered",
             "Add an item to my order", "Cancel part of order {order}"),
            ("Can I change the quantity of order {order} from 5 to 3?",
             "Please move the delivery of order {order} to {date}.",
             "I ordered the wrong size of the {product}, can you change it before it ships?",
             "I would like to add a second {product} to my open order.",
             "Please remove one item from order {order}, the rest can be shipped.",
             "Could you change the colour of the {product} I ordered yesterday?"),
        ),
        "de": (("Bestellung ändern", "Liefertermin verschieben"),
               ("Können Sie die Menge der Bestellung {order} ändern?",
                "Bitte verschieben Sie die Lieferung auf den {date}.")),
        "es": (("Modificar pedido", "Cambiar fecha de entrega"),
               ("¿Puedo cambiar la cantidad del pedido {order}?",
                "Por favor, cambien la fecha de entrega al {date}.")),
        "ru": (("Изменить заказ", "Перенести доставку"),
               ("Можно изменить количество в заказе {order}?",
                "Перенесите, пожалуйста, доставку на {date}.")),
    },
    "Cancellation": {
        "en": (
            ("Cancel my subscription", "Close my account", "Terminate contract", "Stop the service",
             "Please end my membership"),
            ("I want to cancel my subscription at the end of this month.",
             "Please close my account and delete my payment details.",
             "We are terminating our contract, the notice period ends on {date}.",
             "Stop the automatic renewal, I do not want another year.",
             "We moved to another provider, please end the service for our team.",
             "How do I cancel? I cannot find the option in my profile."),
        ),
        "de": (("Abo kündigen", "Vertrag beenden"),
               ("Ich möchte mein Abonnement zum Monatsende kündigen.",
                "Bitte schließen Sie mein Konto und beenden Sie den Vertrag.")),
        "es": (("Cancelar suscripción", "Dar de baja la cuenta"),
               ("Quiero cancelar mi suscripción a final de mes.",
                "Por favor, den de baja mi cuenta y el contrato.")),
        "ru": (("Отменить подписку", "Расторгнуть договор"),
               ("Хочу отменить подписку с конца месяца.",
                "Прошу закрыть мой аккаунт и расторгнуть договор.")),
    },
    "Product Question": {
        "en": (
            ("Question about features", "Which plan do I need?", "Is it compatible?", "How does this work?",
             "Pricing question", "Feature availability"),
            ("Does the Pro plan include an API and how many users can we add?",
             "Is the {product} compatible with Windows 11 and macOS?",
             "How do I set up automatic reports for my team?",
             "What is the difference between the Standard and the Business plan?",
             "Can I export my data to Excel with the free version?",
             "Do you offer a discount for non-profit organisations?"),
        ),
        "de": (("Frage zum Produkt", "Welcher Tarif passt?"),
               ("Enthält der Business-Tarif eine Schnittstelle für unsere Buchhaltung?",
                "Ist das {product} mit älteren Geräten kompatibel?")),
        "es": (("Pregunta sobre el producto", "¿Qué plan necesito?"),
               ("¿El plan Business incluye acceso a la API?",
                "¿Es compatible el {product} con Android?")),
        "ru": (("Вопрос о продукте", "Какой тариф выбрать?"),
               ("Есть ли в тарифе Business доступ к API?",
                "Совместим ли {product} с macOS?")),
    },
    "Complaint": {
        "en": (
            ("Formal complaint", "Very bad service", "Unhappy with support", "Rude agent",
             "Worst experience ever", "Complaint about your staff"),
            ("The agent I spoke to was rude and hung up on me.",
             "I have waited three weeks for an answer, this service is unacceptable.",
             "I want to file a formal complaint about how my case was handled.",
             "Nobody keeps their promises, I was told five times someone would call back.",
             "Your technician arrived two hours late and left without fixing anything.",
             "I am extremely disappointed with the way your staff treated me."),
        ),
        "de": (("Beschwerde", "Sehr schlechter Service"),
               ("Ich möchte mich offiziell über Ihren Kundendienst beschweren.",
                "Der Mitarbeiter war unfreundlich und hat einfach aufgelegt.")),
        "es": (("Queja formal", "Pésimo servicio"),
               ("Quiero presentar una queja formal por el trato recibido.",
                "El agente fue muy grosero y me colgó.")),
        "ru": (("Жалоба", "Ужасное обслуживание"),
               ("Хочу подать официальную жалобу на работу поддержки.",
                "Оператор нагрубил и бросил трубку.")),
    },
    "Security & Fraud": {
        "en": (
            ("Unauthorized transaction", "Card stolen", "Suspicious email", "Account hacked",
             "Fraud on my card", "Strange login alert"),
            ("There is a payment of {amount} on my card that I did not make.",
             "My wallet was stolen, please block my card {card} immediately.",
             "I received an email asking for my password that looks like phishing.",
             "Someone logged into my account from another country and changed my email.",
             "I got an SMS with a link to 'verify my account', is this a scam?",
             "Several small charges appeared overnight from a shop I do not know."),
        ),
        "de": (("Unbekannte Abbuchung", "Karte gestohlen"),
               ("Auf meiner Karte ist eine Zahlung über {amount}, die ich nicht gemacht habe.",
                "Meine Karte wurde gestohlen, bitte sofort sperren.")),
        "es": (("Cargo no autorizado", "Me robaron la tarjeta"),
               ("Hay un cargo de {amount} en mi tarjeta que no reconozco.",
                "Me robaron la tarjeta, bloquéenla de inmediato por favor.")),
        "ru": (("Несанкционированное списание", "Украли карту"),
               ("С моей карты списали {amount}, я этого не делал.",
                "У меня украли карту, срочно заблокируйте её.")),
    },
    "Other": {
        "en": (
            ("General question", "Feedback", "Partnership inquiry", "Office opening hours", "Newsletter",
             "Request for a call"),
            ("Do you have an office in Berlin where I could drop by?",
             "Please remove me from your newsletter mailing list.",
             "We would like to discuss a partnership with your company.",
             "Just wanted to say thanks, the new website looks great.",
             "Are you hiring? I would like to send my CV.",
             "Can someone from your press team call me back about an article?"),
        ),
        "de": (("Allgemeine Frage", "Feedback"),
               ("Haben Sie ein Büro in München, das man besuchen kann?",
                "Bitte nehmen Sie mich aus dem Newsletter-Verteiler.")),
        "es": (("Consulta general", "Comentario"),
               ("¿Tienen una oficina en Madrid que se pueda visitar?",
                "Por favor, quítenme de la lista del boletín.")),
        "ru": (("Общий вопрос", "Отзыв"),
               ("Есть ли у вас офис в Москве?",
                "Уберите меня, пожалуйста, из рассылки.")),
    },
}  # fmt: skip

_OPENINGS: Mapping[_Lang, tuple[str, ...]] = {
    "en": ("", "", "Hello,", "Hi team,", "Good morning,", "Dear support,"),
    "de": ("", "Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,"),
    "es": ("", "Hola,", "Buenos días,"),
    "ru": ("", "Здравствуйте!", "Добрый день."),
}
_DETAILS: Mapping[_Lang, tuple[str, ...]] = {
    "en": ("", "", "My customer number is {customer}.", "This is the second time I am writing about it.",
           "I already tried calling but the line was busy.", "Screenshot attached.",
           "It is urgent for us.", "We are a small business and depend on this."),
    "de": ("", "Meine Kundennummer ist {customer}.", "Ich schreibe bereits zum zweiten Mal."),
    "es": ("", "Mi número de cliente es {customer}.", "Es la segunda vez que escribo."),
    "ru": ("", "Мой номер клиента {customer}.", "Пишу уже второй раз."),
}  # fmt: skip
_CLOSINGS: Mapping[_Lang, tuple[str, ...]] = {
    "en": ("", "Thanks.", "Thank you in advance.", "Please help.", "Regards, {name}", "Best, {name}"),
    "de": ("", "Danke.", "Viele Grüße, {name}"),
    "es": ("", "Gracias.", "Saludos, {name}"),
    "ru": ("", "Спасибо.", "С уважением, {name}"),
}
_NAMES = ("Anna", "Mark", "Olga", "Pedro", "Lena", "Tom", "Sara", "Ivan", "Julia", "Ahmed", "Chen", "Marta")
_PRODUCTS = ("headset", "router", "laptop stand", "smart watch", "printer", "webcam", "keyboard", "tablet case")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October")
_LANGS = ("en",) * 7 + ("de", "es", "ru")
_ORIGINS = ("Web", "Email", "Phone")
_PRIORITIES = ("Low", "Medium", "Medium", "High")


def _slots(rng: random.Random) -> dict[str, str]:
    """One case's order number, amount, date, ...: its subject and description name the same ones."""
    return dict(
        order=f"{rng.randint(10000, 99999)}",
        amount=f"{rng.randint(5, 400)}.{rng.choice(('00', '50', '99'))} EUR",
        date=f"{rng.randint(1, 28)}.{rng.randint(1, 12):02d}.2024",
        month=rng.choice(_MONTHS),
        product=rng.choice(_PRODUCTS),
        card=f"ending {rng.randint(1000, 9999)}",
        customer=f"C-{rng.randint(100000, 999999)}",
        name=rng.choice(_NAMES),
    )


def history_records(count: int = HISTORY_SIZE, *, seed: int = 7) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``count`` closed cases (type, fixed id, fields), the categories in turn, each with ``AI_Category__c`` set."""
    rng = random.Random(seed)
    categories = tuple(_TOPICS)
    records: list[tuple[str, str, Mapping[str, Any]]] = []
    for i in range(count):
        category = categories[i % len(categories)]
        lang = rng.choice(_LANGS)
        subjects, problems = _TOPICS[category][lang]
        parts = [rng.choice(_OPENINGS[lang]), rng.choice(problems), rng.choice(_DETAILS[lang]),
                 rng.choice(_CLOSINGS[lang])]  # fmt: skip
        slots = _slots(rng)
        fields = {
            "Subject": rng.choice(subjects).format(**slots),
            "Description": " ".join(p for p in parts if p).format(**slots),
            "Origin": rng.choice(_ORIGINS),
            "Priority": rng.choice(_PRIORITIES),
            "Status": "Closed",
            "AI_Category__c": category,
        }
        records.append(("Case", make_id("500", 10_000 + i, pod="HS"), fields))
    return records
