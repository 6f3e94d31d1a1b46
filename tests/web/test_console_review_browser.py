"""Member service beyond one member, in headless Chromium: a manager merges a member's two
sign-ups and works through the referral review queue; a cashier may do neither."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from test_console_browser import log_in, points
from web_support import CAPPUCCINO, Cafe

from treu.auth.model import StaffRole
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind, MemberStatus
from treu.referrals.model import ReferralStatus
from treu.referrals.service import list_referrals, referral_card
from treu.storage.uow import UnitOfWork

pytestmark = pytest.mark.browser


def test_a_manager_merges_a_members_two_sign_ups(page: Page, cafe: Cafe) -> None:
    till = cafe.enrol("karte-4711@kiezcafe.example", name="Käthe Schröder")
    online = cafe.enrol("kaethe@kiezcafe.example", name="Käthe S.")
    cafe.buy(till.id, CAPPUCCINO.model_copy(update={"quantity": 9}))  # 30 points
    cafe.buy(online.id, CAPPUCCINO.model_copy(update={"quantity": 3}))  # 10 points
    log_in(page, cafe, StaffRole.MANAGER)
    page.goto(f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/members/{till.id}")

    page.get_by_label("Doppelt angemeldet? Die andere Anmeldung").fill("kaethe@kiezcafe.example")
    page.get_by_role("button", name="Doppelte zusammenführen").click()
    expect(page.locator("#other-available")).to_have_text("10 Punkte")
    assert cafe.member(online.id).status is MemberStatus.ACTIVE  # looking changes nothing

    page.get_by_role("button", name="Käthe S. mit Käthe Schröder zusammenführen").click()
    expect(page).to_have_url(re.compile(rf"/members/{till.id}$"))
    expect(page.locator("#available")).to_have_text("40 Punkte")
    assert cafe.member(online.id).status is MemberStatus.MERGED
    assert points(cafe, till.id) == 40


def test_a_manager_cannot_merge_a_member_into_itself(page: Page, cafe: Cafe) -> None:
    member = cafe.enrol("einmal@kiezcafe.example", name="Einzel Person")
    log_in(page, cafe, StaffRole.MANAGER)
    page.goto(
        f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/members/{member.id}/merge"
        "?other=einmal@kiezcafe.example"
    )
    expect(page.get_by_role("alert")).to_contain_text("Das ist dieses Mitglied")
    expect(page.get_by_role("button", name=re.compile("zusammenführen$"))).to_have_count(0)


def held_referral(cafe: Cafe, friend_name: str) -> str:
    """A friend who signs up from the referrer's own address: held for review."""
    address = "203.0.113.7"  # as the shop reported it at both sign-ups
    first = friend_name.split()[0].lower()
    with UnitOfWork(cafe.engine) as uow:
        referrer = enrol_member(
            uow,
            programme_id=cafe.programme_id,
            identifiers_={IdentifierKind.EMAIL: f"werber-{first}@x.example"},
            name="Rita Referrer",
            client_address=address,
        )
    with UnitOfWork(cafe.engine) as uow:
        code = referral_card(uow, tenant_id=cafe.tenant_id, member_id=referrer.id).code
        uow.commit()
    with UnitOfWork(cafe.engine) as uow:
        enrol_member(
            uow,
            programme_id=cafe.programme_id,
            identifiers_={IdentifierKind.EMAIL: f"{first}@x.example"},
            name=friend_name,
            referral_code=code,
            client_address=address,
        )
    with UnitOfWork(cafe.engine) as uow:
        held = list_referrals(uow, programme_id=cafe.programme_id, status=ReferralStatus.HELD)
    assert held, "the referral was not held"
    return held[-1].id


def test_a_manager_works_through_the_referral_review_queue(page: Page, cafe: Cafe) -> None:
    first, second = held_referral(cafe, "Fritz Freund"), held_referral(cafe, "Frida Freundin")
    log_in(page, cafe, StaffRole.MANAGER)
    page.goto(f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe/members")
    page.get_by_role("link", name="Prüfliste").click()
    expect(page.locator(f"#referral-{first}")).to_contain_text("Fritz Freund")

    page.get_by_role("button", name="Empfehlung von Fritz Freund freigeben").click()
    expect(page.get_by_role("status")).to_have_text("Empfehlung freigegeben.")
    page.get_by_role("button", name="Empfehlung von Frida Freundin ablehnen").click()
    expect(page.get_by_role("status")).to_have_text("Empfehlung abgelehnt.")
    expect(page.locator("#queue-empty")).to_be_visible()
    with UnitOfWork(cafe.engine) as uow:
        decided = {r.id: r for r in list_referrals(uow, programme_id=cafe.programme_id)}
    assert decided[first].status is not ReferralStatus.HELD
    assert decided[second].status is ReferralStatus.REJECTED
    assert str(decided[second].decided_by).startswith("staff:")


def test_a_cashier_may_neither_merge_nor_review_and_forms_need_their_token(
    page: Page, cafe: Cafe
) -> None:
    member, other = cafe.enrol(), cafe.enrol()
    referral = held_referral(cafe, "Franz Freund")
    log_in(page, cafe, StaffRole.CASHIER)
    console = f"{cafe.base}/console/{cafe.tenant_key}/kiezcafe"
    expect(page.get_by_role("link", name="Prüfliste")).to_have_count(0)
    for path in ("/referrals", f"/members/{member.id}/merge"):
        answer = page.goto(console + path)
        assert answer is not None
        assert answer.status == 403

    # Posts without the page's CSRF token are refused before anything else.
    merged = page.request.post(f"{console}/members/{member.id}/merge", form={"other": other.id})
    approved = page.request.post(f"{console}/referrals/{referral}/approve", form={})
    assert (merged.status, approved.status) == (403, 403)
    assert cafe.member(other.id).status is MemberStatus.ACTIVE
    with UnitOfWork(cafe.engine) as uow:
        held = list_referrals(uow, programme_id=cafe.programme_id, status=ReferralStatus.HELD)
    assert referral in {r.id for r in held}
