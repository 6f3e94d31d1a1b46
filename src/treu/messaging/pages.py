"""The small HTML pages behind the links in messages: confirm a double opt-in, unsubscribe
(German and English; pure).

Opening a link (GET) only shows a page with a button; the button POSTs. Mail security scanners
open every link in an e-mail before the reader does: a GET that confirmed or unsubscribed would
be done by a machine, and a confirmation made by a scanner proves nothing.
"""

from __future__ import annotations

from typing import Literal

from treu.messaging.render import Locality, render_source

Page = Literal["confirm_ask", "confirm_done", "unsubscribe_ask", "unsubscribe_done", "invalid"]

_TEXTS: dict[str, dict[Page, tuple[str, str, str | None]]] = {
    # page: (title, message, button)
    "de": {
        "confirm_ask": (
            "Anmeldung bestätigen",
            "Möchtest du Neuigkeiten, Angebote und Erinnerungen von {name} per E-Mail bekommen?",
            "Ja, bestätigen",
        ),
        "confirm_done": (
            "Danke!",
            "Deine Anmeldung bei {name} ist bestätigt. Abmelden kannst du dich jederzeit mit dem "
            "Link in jeder E-Mail.",
            None,
        ),
        "unsubscribe_ask": (
            "Abmelden",
            "Möchtest du keine {what} von {name} mehr bekommen?",
            "Abmelden",
        ),
        "unsubscribe_done": (
            "Abgemeldet",
            "Du bekommst keine {what} von {name} mehr. Nachrichten zu deinem Konto (etwa "
            "Gutscheine oder Anmeldecodes) schicken wir dir weiterhin.",
            None,
        ),
        "invalid": (
            "Link ungültig",
            "Dieser Link ist nicht (mehr) gültig. Vielleicht wurde er schon durch einen neueren "
            "ersetzt.",
            None,
        ),
    },
    "en": {
        "confirm_ask": (
            "Confirm your subscription",
            "Would you like to get news, offers and reminders from {name} by e-mail?",
            "Yes, confirm",
        ),
        "confirm_done": (
            "Thank you!",
            "Your subscription to {name} is confirmed. You can unsubscribe at any time with the "
            "link in every e-mail.",
            None,
        ),
        "unsubscribe_ask": (
            "Unsubscribe",
            "Would you like to stop getting {what} from {name}?",
            "Unsubscribe",
        ),
        "unsubscribe_done": (
            "Unsubscribed",
            "You will get no more {what} from {name}. Messages about your account (such as "
            "vouchers or login codes) still reach you.",
            None,
        ),
        "invalid": (
            "Invalid link",
            "This link is not valid (any more). Maybe a newer one replaced it.",
            None,
        ),
    },
}
_WHAT = {
    "de": {"email": "E-Mails", "sms": "SMS", "push": "Push-Nachrichten", "post": "Post"},
    "en": {"email": "e-mails", "sms": "text messages", "push": "push messages", "post": "letters"},
}

_PAGE = """<!DOCTYPE html>
<html lang="{{ language }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ title }}</title>
<style>
body{margin:0;padding:48px 16px;background:#f6f4f0;color:#2b2b2b;
font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif}
main{max-width:480px;margin:0 auto;background:#fff;border-radius:8px;padding:28px}
h1{font-size:22px;margin:0 0 12px}p{line-height:1.5}
button{font-size:16px;padding:10px 18px;border:0;border-radius:6px;background:#2f6f4f;
color:#fff;cursor:pointer}
</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
<p>{{ message }}</p>
{% if button %}
<form method="post" action="{{ action }}"><button type="submit">{{ button }}</button></form>
{% endif %}
</main>
</body>
</html>
"""


def link_page(
    page: Page, *, language: str, programme_name: str, channel: str = "email", action: str = ""
) -> str:
    lang = "de" if language.lower().startswith("de") else "en"
    title, message, button = _TEXTS[lang][page]
    what = _WHAT[lang].get(channel, _WHAT[lang]["email"])
    values = {
        "language": lang,
        "title": title,
        "message": message.format(name=programme_name, what=what),
        "button": button,
        "action": action,
    }
    return render_source(_PAGE, values, Locality(lang, "EUR", "UTC"), html_mode=True)
