"""Transports: how a rendered message leaves Treu — e-mail over SMTP, SMS and push over a
provider's HTTP API. Each takes an :class:`Outgoing` and answers a :class:`SendResult`; none
touches the database (the dispatcher calls them with no transaction open).

- **E-mail**: the standard library's ``smtplib`` and ``email.message.EmailMessage``:
  multipart/alternative (plain text and HTML), UTF-8 throughout, ``Message-ID`` derived from
  the message id (a resend after a crash carries the same id, so mail systems can tell),
  ``List-Unsubscribe`` + ``List-Unsubscribe-Post`` (RFC 8058) on marketing. A recipient the
  server refuses with 5xx is a bounce; 4xx and lost connections are tried again.
- **SMS**: ``generic`` — ``POST {TREU_SMS_URL}`` with JSON ``{"to", "text", "sender",
  "message_id"}`` and ``Authorization: Bearer {TREU_SMS_TOKEN}``; ``twilio`` — the Twilio
  Messages API (form-encoded, HTTP basic auth with the account SID and auth token).
- **Push**: ``POST {TREU_PUSH_URL}`` with JSON ``{"to": [device tokens], "title", "body",
  "message_id"}`` (a relay such as a small FCM/APNs gateway).

Provider answers: 2xx sent; 408, 429 and 5xx (and no answer) are tried again; other 4xx are
permanent (a wrong number stays wrong).
"""

from __future__ import annotations

import base64
import http.client
import json
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from treu import __version__
from treu.config import Settings, get_settings
from treu.messaging.model import MessageChannel

HTTP_TIMEOUT = 15.0
# SMTP lines may be 998 characters long; Python's default of 78 would fold (or encode) the long
# unsubscribe URL inside List-Unsubscribe, which mail clients then fail to read.
_POLICY = policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class Outgoing:
    """One message as a transport needs it."""

    message_id: str
    tenant_id: str
    channel: MessageChannel
    to: str
    subject: str | None
    text: str
    html: str | None
    at: datetime  # when it is sent (the Date header)
    from_email: str = ""
    from_name: str | None = None
    reply_to: str | None = None
    sender: str | None = None  # SMS sender id / number
    devices: tuple[str, ...] = ()  # push device tokens
    headers: Mapping[str, str] = field(default_factory=dict)  # extra e-mail headers


@dataclass(frozen=True)
class SendResult:
    sent: bool
    permanent: bool = False  # no point in trying again
    bounced: bool = False  # the address itself is bad: suppress it
    error: str | None = None
    provider_id: str | None = None

    @classmethod
    def ok(cls, provider_id: str | None = None) -> SendResult:
        return cls(True, provider_id=provider_id)

    @classmethod
    def retry(cls, error: str) -> SendResult:
        return cls(False, error=error)

    @classmethod
    def give_up(cls, error: str, *, bounced: bool = False) -> SendResult:
        return cls(False, permanent=True, bounced=bounced, error=error)


Transport = Callable[[Outgoing], SendResult]


# --- e-mail ------------------------------------------------------------------------------------


def build_email(out: Outgoing) -> EmailMessage:
    """The e-mail as sent: text and HTML alternatives, UTF-8, the standard headers."""
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = out.subject or ""
    message["From"] = _address(out.from_email, out.from_name)
    message["To"] = out.to
    if out.reply_to:
        message["Reply-To"] = out.reply_to
    message["Date"] = format_datetime(out.at)
    domain = out.from_email.rpartition("@")[2] or "treu.invalid"
    message["Message-ID"] = f"<{out.message_id}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    for name, value in out.headers.items():
        message[name] = value
    message.set_content(out.text, charset="utf-8", cte="quoted-printable")
    if out.html:
        message.add_alternative(out.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message


def _address(email: str, name: str | None) -> Address | str:
    user, _, domain = email.rpartition("@")
    if not user or not domain:
        return email
    return Address(display_name=name or "", username=user, domain=domain)


def smtp_transport(settings: Settings | None = None) -> Transport:
    """Send e-mail through the SMTP server of the settings (TREU_SMTP_*)."""
    chosen = settings or get_settings()

    def send(out: Outgoing) -> SendResult:
        return send_email(out, chosen)

    return send


def send_email(out: Outgoing, settings: Settings) -> SendResult:
    message = build_email(out)
    client: type[smtplib.SMTP] = smtplib.SMTP_SSL if settings.smtp_ssl else smtplib.SMTP
    try:
        with client(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout) as smtp:
            if settings.smtp_starttls and not settings.smtp_ssl:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message, from_addr=out.from_email, to_addrs=[out.to])
    except smtplib.SMTPRecipientsRefused as exc:
        code, answer = next(iter(exc.recipients.values()), (0, b""))
        error = f"{code} {_text(answer)}"
        if 500 <= code < 600:
            return SendResult.give_up(f"recipient refused: {error}", bounced=True)
        return SendResult.retry(f"recipient deferred: {error}")
    except (smtplib.SMTPSenderRefused, smtplib.SMTPAuthenticationError) as exc:
        # our side's problem (the From address, the credentials): fixable, so tried again
        return SendResult.retry(f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}")
    except smtplib.SMTPResponseException as exc:
        error = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        if 500 <= exc.smtp_code < 600:
            return SendResult.give_up(f"refused: {error}")
        return SendResult.retry(f"deferred: {error}")
    except (smtplib.SMTPException, OSError) as exc:  # refused, reset, time-out, TLS, DNS
        return SendResult.retry(f"{type(exc).__name__}: {exc}")
    return SendResult.ok(message["Message-ID"])


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)


# --- HTTP providers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpAnswer:
    status: int | None
    body: bytes
    error: str | None


def http_post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float = HTTP_TIMEOUT
) -> HttpAnswer:
    """POST with the standard library; the answer's status and body (or why there was none).
    Provider URLs come from the operator's settings, not from tenants: no address checks."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 - http(s) from the settings
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return HttpAnswer(response.status, response.read(), None)
    except urllib.error.HTTPError as exc:
        try:
            return HttpAnswer(exc.code, exc.read(), None)
        finally:
            exc.close()
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return HttpAnswer(None, b"", f"{type(exc).__name__}: {exc}")


def _result(answer: HttpAnswer, id_field: str) -> SendResult:
    if answer.status is None:
        return SendResult.retry(answer.error or "no answer")
    if 200 <= answer.status < 300:
        provider_id = None
        try:
            document = json.loads(answer.body or b"null")
            if isinstance(document, dict) and document.get(id_field) is not None:
                provider_id = str(document[id_field])[:200]
        except ValueError:
            pass
        return SendResult.ok(provider_id)
    error = f"HTTP {answer.status}: {answer.body[:300].decode('utf-8', 'replace')}"
    if answer.status in (408, 429) or answer.status >= 500:
        return SendResult.retry(error)
    return SendResult.give_up(error)


def _json_headers(token: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": f"Treu/{__version__}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def generic_sms_transport(settings: Settings | None = None) -> Transport:
    chosen = settings or get_settings()

    def send(out: Outgoing) -> SendResult:
        body = {
            "to": out.to,
            "text": out.text,
            "sender": out.sender or chosen.sms_sender or None,
            "message_id": out.message_id,
        }
        answer = http_post(chosen.sms_url, _dumps(body), _json_headers(chosen.sms_token))
        return _result(answer, "id")

    return send


def twilio_sms_transport(settings: Settings | None = None) -> Transport:
    """The Twilio Messages API: ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json``."""
    chosen = settings or get_settings()

    def send(out: Outgoing) -> SendResult:
        account = chosen.sms_account
        url = f"{chosen.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/{account}/Messages.json"
        form = {"To": out.to, "From": out.sender or chosen.sms_sender, "Body": out.text}
        credentials = base64.b64encode(f"{account}:{chosen.sms_token}".encode()).decode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {credentials}",
            "User-Agent": f"Treu/{__version__}",
        }
        answer = http_post(url, urllib.parse.urlencode(form).encode(), headers)
        return _result(answer, "sid")

    return send


def push_transport(settings: Settings | None = None) -> Transport:
    chosen = settings or get_settings()

    def send(out: Outgoing) -> SendResult:
        body = {
            "to": list(out.devices or (out.to,)),
            "title": out.subject,
            "body": out.text,
            "message_id": out.message_id,
        }
        answer = http_post(chosen.push_url, _dumps(body), _json_headers(chosen.push_token))
        return _result(answer, "id")

    return send


def _dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def unconfigured(channel: MessageChannel) -> Transport:
    """No provider set up for the channel: messages wait and are tried again (then fail)."""

    def send(_out: Outgoing) -> SendResult:
        return SendResult.retry(f"no {channel.value} provider is configured (docs/messaging.md)")

    return send


def default_transports(settings: Settings | None = None) -> dict[MessageChannel, Transport]:
    """The transports the settings configure (TREU_SMTP_*, TREU_SMS_*, TREU_PUSH_*)."""
    chosen = settings or get_settings()
    sms: Transport = unconfigured(MessageChannel.SMS)
    if chosen.sms_provider == "twilio":
        sms = twilio_sms_transport(chosen)
    elif chosen.sms_provider == "generic" and chosen.sms_url:
        sms = generic_sms_transport(chosen)
    return {
        MessageChannel.EMAIL: smtp_transport(chosen),
        MessageChannel.SMS: sms,
        MessageChannel.PUSH: (
            push_transport(chosen) if chosen.push_url else unconfigured(MessageChannel.PUSH)
        ),
    }
