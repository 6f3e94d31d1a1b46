"""Messages over HTTP: the double opt-in link, one-click unsubscribe, the message log,
templates and previews, bounces — with e-mail delivered to a real SMTP server."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from api_support import Tenant
from sqlalchemy import Engine

from messaging_support import SmtpServer
from treu.messaging.dispatcher import dispatch
from treu.messaging.model import MessageKind
from treu.messaging.service import enqueue_message
from treu.programmes.service import find_programme_id, load_programme
from treu.storage.uow import UnitOfWork

HTML = {"Accept": "text/html,application/xhtml+xml"}


def send_all(engine: Engine, shop: Tenant) -> Any:
    return dispatch(lambda: UnitOfWork(engine), tenant_id=shop.id)


def offer(engine: Engine, shop: Tenant, member_id: str, key: str) -> Any:
    """A marketing e-mail, as an automation queues it."""
    with UnitOfWork(engine) as uow:
        programme_id = find_programme_id(uow, tenant_id=shop.id, key=shop.programme)
        queued = enqueue_message(
            uow,
            load_programme(uow, programme_id),
            member_id=member_id,
            template="win_back",
            channel="email",
            kind=MessageKind.MARKETING,
            dedupe_key=key,
        )
        uow.commit()
        return queued


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_double_opt_in_through_the_link_in_the_email(
    shop: Tenant, engine: Engine, smtp_server: SmtpServer
) -> None:
    mia = shop.enrol("mia@example.org", name="Mia", consents={"email": True})
    assert mia["consents"] == {"email": True}  # as given; marketing waits for the confirmation
    [pending] = shop.get(f"/v1/members/{mia['id']}/messages").json()["data"]
    assert (pending["template"], pending["kind"], pending["status"]) == (
        "optin_confirm",
        "transactional",
        "queued",
    )
    assert offer(engine, shop, mia["id"], "o-1").reason == "unconfirmed"

    send_all(engine, shop)
    [mail] = smtp_server.to("mia@example.org")
    url = re.search(r"https?://\S+/v1/consents/confirm/\S+", mail.text)
    assert url is not None
    link = path_of(url.group(0))

    page = shop.client.get(link, headers=HTML)  # a browser (or a mail scanner) opens it
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Confirm your subscription" in page.text
    assert f'action="{link}"' in page.text
    assert len(shop.get(f"/v1/members/{mia['id']}/consents").json()) == 1  # nothing yet

    done = shop.client.post(link, headers={**HTML, "User-Agent": "Firefox/128"})
    assert done.status_code == 200
    assert "Your subscription to Kiezcafé Treue is confirmed" in done.text
    again = shop.client.post(link)
    assert again.json() == {
        "object": "consent_link",
        "channel": "email",
        "action": "confirm",
        "done": True,
        "changed": False,
    }
    history = shop.get(f"/v1/members/{mia['id']}/consents").json()
    assert [(c["granted"], c["source"]) for c in history] == [
        (True, "api"),
        (True, "double_opt_in"),
    ]
    assert history[1]["evidence"]["user_agent"] == "Firefox/128"
    assert history[1]["evidence"]["confirms"] == history[0]["id"]
    assert offer(engine, shop, mia["id"], "o-2").status == "queued"


def test_one_click_unsubscribe_stops_the_next_marketing_email(
    shop: Tenant, engine: Engine, smtp_server: SmtpServer
) -> None:
    mia = shop.enrol("mia@example.org", name="Mia")
    granted = shop.post(
        f"/v1/members/{mia['id']}/consents", {"channel": "email", "granted": True}
    ).json()
    assert (granted["granted"], granted["pending"]) == (True, True)
    send_all(engine, shop)
    [confirmation] = smtp_server.received
    link = re.search(r"/v1/consents/confirm/[\w.\-]+", confirmation.text)
    assert link is not None
    assert shop.client.post(link.group(0)).json()["done"] is True

    offer(engine, shop, mia["id"], "o-1")
    send_all(engine, shop)
    mail = smtp_server.received[-1]
    assert mail.subject == "We miss you, Mia!"
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = path_of(str(mail.message["List-Unsubscribe"]).strip("<>"))

    shown = shop.client.get(unsubscribe)
    assert shown.json()["done"] is False
    # what a mail client sends for RFC 8058 one-click: a form POST, no credentials
    clicked = shop.client.post(
        unsubscribe,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert clicked.status_code == 200, clicked.text
    assert clicked.json()["done"] is True

    assert offer(engine, shop, mia["id"], "o-2").reason == "no_consent"
    history = shop.get(f"/v1/members/{mia['id']}/consents").json()
    assert (history[-1]["granted"], history[-1]["source"]) == (False, "unsubscribe_link")
    page = shop.client.get(unsubscribe, headers=HTML)
    assert "Unsubscribed" in page.text


def test_a_bad_link_is_invalid_token_or_an_html_page_saying_so(shop: Tenant) -> None:
    answer = shop.client.post("/v1/unsubscribe/not-a-token")
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "invalid_token"
    page = shop.client.get("/v1/consents/confirm/not-a-token", headers=HTML)
    assert page.status_code == 400
    assert "Link ungültig" in page.text


def test_the_message_log_pages_through_a_members_messages(shop: Tenant, engine: Engine) -> None:
    mia = shop.enrol("mia@example.org", name="Mia")
    for key in ("o-1", "o-2", "o-3"):
        offer(engine, shop, mia["id"], key)
    first = shop.get(f"/v1/members/{mia['id']}/messages", params={"limit": 2}, who="read").json()
    assert (len(first["data"]), first["has_more"]) == (2, True)
    rest = shop.get(
        f"/v1/members/{mia['id']}/messages",
        params={"starting_after": first["next_starting_after"]},
    ).json()
    assert [m["status"] for m in first["data"] + rest["data"]] == ["suppressed"] * 3
    assert rest["data"][0]["reason"] == "no_consent"
    assert rest["data"][0]["subject"] == "We miss you, Mia!"
    assert shop.get(f"/v1/members/{mia['id']}/messages", who="pos").status_code == 403


def test_templates_list_the_built_ins_and_a_preview_renders_one_for_a_member(
    shop: Tenant,
) -> None:
    mia = shop.enrol("mia@example.org", name="Mia Müller")
    shop.buy(mia["id"], "25.00")
    listed = shop.get(f"/v1/programmes/{shop.programme}/templates", who="read").json()
    assert {"statement", "welcome", "optin_confirm", "login_code"} <= {t["key"] for t in listed}
    assert {t["source"] for t in listed} == {"built_in"}

    shown = shop.post("/v1/templates/preview", {"member": mia["id"], "template": "statement"})
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["subject"] == "Your Kiezcafé Treue statement: 25 points"
    assert "You need 5 more points for your next reward, Gratis Kaffee." in body["text"]
    assert body["context"]["balance"] == 25
    assert body["context"]["saved"] == "0.00"  # a decimal string, never a float

    written = shop.post(
        "/v1/templates/preview",
        {
            "member": "email:mia@example.org",
            "programme": shop.programme,
            "definition": {
                "text": {"de": "Hallo {{ first_name }}, noch {{ points_to_next_reward }}!"}
            },
            "kind": "transactional",
        },
    ).json()
    assert written["text"] == "Hallo Mia, noch 5!"


def test_a_preview_of_a_broken_template_says_where_it_breaks(shop: Tenant) -> None:
    mia = shop.enrol("mia@example.org", name="Mia")
    broken = shop.post(
        "/v1/templates/preview",
        {"member": mia["id"], "definition": {"text": {"de": "Hallo {{ first_nme }}"}}},
    )
    assert broken.status_code == 422
    assert broken.json()["code"] == "template_error"
    assert "first_nme" in broken.json()["detail"]
    unknown = shop.post("/v1/templates/preview", {"member": mia["id"], "template": "nope"})
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_template")
    assert (
        shop.post(
            "/v1/templates/preview", {"member": mia["id"], "template": "statement"}, who="read"
        ).status_code
        == 403
    )


def test_a_bounce_reported_by_the_provider_stops_mail_to_the_address(
    shop: Tenant, engine: Engine
) -> None:
    mia = shop.enrol("mia@example.org", name="Mia")
    reported = shop.post(
        "/v1/messages/bounces",
        {"address": "Mia@Example.org", "reason": "bounced", "detail": "550 mailbox unknown"},
        who="integration",
    )
    assert reported.status_code == 201, reported.text
    assert (reported.json()["address"], reported.json()["reason"]) == ("mia@example.org", "bounced")
    assert offer(engine, shop, mia["id"], "o-1").reason == "bounced"
    assert (
        shop.post("/v1/messages/bounces", {"address": "x@example.org"}, who="pos").status_code
        == 403
    )


@pytest.mark.parametrize("channel", ["sms", "push"])
def test_consent_for_other_channels_needs_no_confirmation(shop: Tenant, channel: str) -> None:
    mia = shop.enrol("mia@example.org")
    state = shop.post(
        f"/v1/members/{mia['id']}/consents",
        {"channel": channel, "granted": True, "source": "app", "text_version": "2026-01"},
        who="integration",
    ).json()
    assert (state["granted"], state["pending"], state["message_id"]) == (True, False, None)
    [record] = shop.get(f"/v1/members/{mia['id']}/consents").json()
    assert (record["source"], record["text_version"]) == ("app", "2026-01")
