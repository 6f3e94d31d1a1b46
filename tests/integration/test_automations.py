"""Automations on both databases: each trigger and action, once per occasion under replays,
delays, control groups, audiences, and two processors at once.

The actions here need nobody else (points, vouchers, ``automation.fired`` for webhooks);
messages are in tests/scenarios/test_0X_messages.py, with a real SMTP server.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, update

from treu.activities.model import ActionIn, PurchaseIn
from treu.activities.service import record_action, record_purchase
from treu.automations.dates import run_date_triggers
from treu.automations.model import Outcome, TriggerEvent
from treu.automations.service import (
    Run,
    automation_summaries,
    list_runs,
    process_events,
    record_shop_event,
    run_due,
)
from treu.clock import FixedClock
from treu.jobs.nightly import run_nightly
from treu.ledger.service import get_balances
from treu.ledger.verify import verify_ledger
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.members.service import create_member
from treu.outbox.service import list_events
from treu.outbox.tables import outbox
from treu.programmes.service import Tenant, apply_programme, load_programme
from treu.rewards.service import list_vouchers, redeem_reward
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")


def document(
    *automations: dict[str, Any], stock: int | None = None, **tiers: Any
) -> dict[str, Any]:
    return {
        "key": "laden",
        "name": "Laden",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "locale": "de",
        "expiry": {"type": "after", "months": 12, "round_to": "month_end", "reminder_days": 30},
        "rules": [
            {
                "key": "punkte",
                "name": "1 Punkt je Euro",
                "when": {"activity": "purchase"},
                "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
            },
            {
                "key": "bewertung",
                "name": "Bewertung",
                "when": {"activity": "action", "action_types": ["review"]},
                "effect": {"type": "fixed", "points": 5},
            },
        ],
        "rewards": [
            {"key": "kaffee", "name": "Kaffee", "kind": "free_product", "sku": "K", "cost": 30},
            {"key": "kuchen", "name": "Kuchen", "kind": "free_product", "sku": "KU", "cost": 50},
            {"key": "brot", "name": "Brot", "kind": "free_product", "sku": "B", "stock": stock},
        ],
        "stamp_cards": [
            {
                "key": "karte",
                "name": "Karte",
                "stamps_needed": 3,
                "earn": {"type": "per_visit"},
                "reward": "brot",
            }
        ],
        "tiers": {
            "metric": "points_earned",
            "levels": [
                {"key": "bronze", "name": "Bronze", "threshold": 0},
                {"key": "silber", "name": "Silber", "threshold": 100},
            ],
            **tiers,
        },
        "segments": [
            {"key": "vip", "name": "VIP", "all": [{"attribute": {"name": "vip", "equals": True}}]}
        ],
        "automations": list(automations),
    }


def auto(key: str, trigger: dict[str, Any], action: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"key": key, "name": key.capitalize(), "trigger": trigger, "action": action, **more}


POINTS = {"type": "points", "points": 50, "reason": "Geschenk"}
VOUCHER = {"type": "voucher", "reward": "brot"}
WEBHOOK = {"type": "webhook", "data": {"list": "crm"}}


class Laden:
    def __init__(
        self, new_uow: NewUow, clock: FixedClock, tenant: Tenant, *automations: Any, **kw: Any
    ) -> None:
        self.new_uow, self.clock, self.tenant = new_uow, clock, tenant
        self.at(2026, 3, 2, 9)
        with new_uow() as uow:
            self.programme_id = apply_programme(
                uow, tenant_id=tenant.id, document=document(*automations, **kw)
            ).programme_id
        self.bons = 0

    def at(self, *when: int) -> None:
        self.clock.set(datetime(*when, tzinfo=BERLIN))  # type: ignore[misc]

    def enrol(self, name: str, **fields: Any) -> str:
        with self.new_uow() as uow:
            return enrol_member(
                uow,
                programme_id=self.programme_id,
                identifiers_={IdentifierKind.EMAIL: f"{name}@example.de"},
                name=name,
                source="test",
                **fields,
            ).id

    def buy(self, member: str, total: str) -> None:
        self.bons += 1
        purchase = PurchaseIn(external_id=f"bon-{self.bons}", currency="EUR", total=total)
        with self.new_uow() as uow:
            record_purchase(uow, programme_id=self.programme_id, member=member, purchase=purchase)

    def review(self, member: str) -> None:
        self.bons += 1
        action = ActionIn(external_id=f"review-{self.bons}", type="review")
        with self.new_uow() as uow:
            record_action(uow, programme_id=self.programme_id, member=member, action=action)

    def process(self) -> int:
        return process_events(self.new_uow, tenant_id=self.tenant.id)

    def runs(self, automation: str | None = None, **filters: Any) -> list[Run]:
        with self.new_uow() as uow:
            programme = load_programme(uow, self.programme_id)
            return list_runs(uow, programme, automation=automation, limit=10_000, **filters)

    def points(self, member: str) -> int:
        with self.new_uow() as uow:
            return get_balances(uow, tenant_id=self.tenant.id, member_id=member).available

    def vouchers(self, member: str) -> list[str]:
        with self.new_uow() as uow:
            found = list_vouchers(uow, tenant_id=self.tenant.id, member_id=member)
            return [v.reward_name for v in found]

    def fired(self) -> list[dict[str, Any]]:
        with self.new_uow() as uow:
            events = list_events(uow, tenant_id=self.tenant.id, type="automation.fired")
            return [e["payload"] for e in events]

    def replay_outbox(self) -> None:
        """As if every event came again (a restored backup, a bug): automated_at cleared."""
        with self.new_uow() as uow:
            uow.conn.execute(
                update(outbox).where(outbox.c.tenant_id == self.tenant.id).values(automated_at=None)
            )
            uow.commit()

    def nightly(self, day: date) -> None:
        self.clock.set(datetime(day.year, day.month, day.day, 2, tzinfo=BERLIN))
        run_nightly(self.new_uow, day=day, programme_id=self.programme_id)


def outcomes(runs: list[Run]) -> list[tuple[str, str, Outcome]]:
    return [(r.member_id, r.occasion, r.outcome) for r in runs]


# --- triggers and actions --------------------------------------------------------------------


def test_a_welcome_gift_of_points_is_given_once_however_often_the_event_comes(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(new_uow, clock, tenant, auto("welcome", {"event": "member.enrolled"}, POINTS))
    mia = laden.enrol("mia")
    assert laden.points(mia) == 0  # nothing before the worker's pass
    assert laden.process() >= 1
    assert laden.points(mia) == 50
    assert outcomes(laden.runs("welcome")) == [(mia, "enrolment", Outcome.DONE)]
    laden.process()  # the gift's own event (points.earned)
    assert laden.process() == 0
    laden.replay_outbox()
    laden.process()
    assert laden.points(mia) == 50
    assert len(laden.runs()) == 1
    with new_uow() as uow:
        assert verify_ledger(uow, tenant_id=tenant.id).ok


def test_the_first_purchase_gives_a_voucher_and_later_ones_nothing(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(new_uow, clock, tenant, auto("erster", {"event": "purchase.first"}, VOUCHER))
    ben = laden.enrol("ben")
    laden.buy(ben, "4.00")
    laden.buy(ben, "5.00")
    laden.process()
    assert laden.vouchers(ben) == ["Brot"]
    assert [r.occasion for r in laden.runs("erster")] == ["first-purchase"]


def test_any_activity_of_the_chosen_types_calls_the_webhook_once_per_activity(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    trigger = {"event": "activity.recorded", "activities": ["action"]}
    laden = Laden(new_uow, clock, tenant, auto("danke", trigger, WEBHOOK))
    ada = laden.enrol("ada")
    laden.buy(ada, "3.00")  # a purchase: not this automation's business
    laden.review(ada)
    laden.review(ada)
    laden.process()
    fired = laden.fired()
    assert [(f["automation"], f["member_id"], f["data"]) for f in fired] == [
        ("danke", ada, {"list": "crm"})
    ] * 2
    assert {f["context"]["activity_type"] for f in fired} == {"action"}
    assert len({f["occasion"] for f in fired}) == 2


def test_one_stamp_away_fires_once_per_card_and_again_for_the_next_card(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    trigger = {"event": "stamps.almost_complete", "cards": ["karte"]}
    laden = Laden(new_uow, clock, tenant, auto("fast", trigger, WEBHOOK))
    eva = laden.enrol("eva")
    for _ in range(2):  # stamp 2 of 3: one away
        laden.buy(eva, "2.00")
    laden.process()
    laden.buy(eva, "2.00")  # card full; the next card starts
    laden.process()
    assert [f["occasion"] for f in laden.fired()] == ["karte:1"]
    context = laden.fired()[0]["context"]
    assert (context["stamps_left"], context["reward_name"]) == (1, "Brot")
    for _ in range(2):
        laden.buy(eva, "2.00")
    laden.process()
    assert [f["occasion"] for f in laden.fired()] == ["karte:1", "karte:2"]


def test_so_close_to_a_reward_fires_once_until_the_member_spends(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    trigger = {"event": "points.almost_reward", "within": 5}
    laden = Laden(new_uow, clock, tenant, auto("so-nah", trigger, WEBHOOK))
    kai = laden.enrol("kai")
    laden.buy(kai, "20.00")  # 20 points: 10 short of a coffee
    laden.process()
    assert laden.fired() == []
    laden.buy(kai, "6.00")  # 26: 4 short
    laden.process()
    [close] = laden.fired()
    assert (close["context"]["reward_name"], close["context"]["points_missing"]) == ("Kaffee", 4)
    laden.buy(kai, "2.00")  # 28: still the same occasion
    laden.process()
    assert len(laden.fired()) == 1
    laden.buy(kai, "2.00")  # 30: the coffee is affordable, the cake 20 away
    with new_uow() as uow:
        redeem_reward(
            uow, tenant_id=tenant.id, member_id=kai, reward_key="kaffee", idempotency_key="r1"
        )
    laden.buy(kai, "27.00")  # 27: 3 short of a coffee again, after a redemption
    laden.process()
    assert [f["occasion"] for f in laden.fired()] == ["kaffee:0", "kaffee:30"]


def test_a_tier_upgrade_to_a_named_tier_fires(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(
        new_uow,
        clock,
        tenant,
        auto("silber", {"event": "tier.upgraded", "tiers": ["silber"]}, POINTS),
    )
    uwe = laden.enrol("uwe")
    laden.buy(uwe, "120.00")
    laden.process()
    assert laden.points(uwe) == 120 + 50
    [run] = laden.runs("silber")
    assert run.trigger == "tier.upgraded"


def test_a_coming_downgrade_fires_once_per_period(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    warnung = auto("warnung", {"event": "tier.will_downgrade"}, WEBHOOK)
    laden = Laden(new_uow, clock, tenant, warnung, will_downgrade_warning_days=30)
    uwe = laden.enrol("uwe")
    laden.at(2026, 6, 1, 10)
    laden.buy(uwe, "120.00")  # Silber for 2026 and 2027
    laden.nightly(date(2027, 12, 5))  # nothing earned in 2027: Silber ends with the year
    laden.nightly(date(2027, 12, 6))
    [fired] = laden.fired()
    assert (fired["occasion"], fired["context"]["to"]) == ("2028-01-01", "bronze")


def test_a_voucher_issued_fires_for_the_rewards_named(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(
        new_uow,
        clock,
        tenant,
        auto("geschenk", {"event": "member.enrolled"}, VOUCHER),
        auto("gutschein", {"event": "voucher.issued", "rewards": ["brot"]}, WEBHOOK),
        auto("kaffee-info", {"event": "voucher.issued", "rewards": ["kaffee"]}, WEBHOOK),
    )
    ina = laden.enrol("ina")
    laden.process()  # the voucher ...
    laden.process()  # ... and its event
    [fired] = laden.fired()
    assert fired["automation"] == "gutschein"
    assert (fired["member_id"], fired["context"]["reward_name"]) == (ina, "Brot")
    assert fired["occasion"] == fired["context"]["voucher_id"]


def test_points_about_to_expire_fire_once_per_expiry_date_from_the_nightly_run(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(new_uow, clock, tenant, auto("verfall", {"event": "points.expiring"}, WEBHOOK))
    rui = laden.enrol("rui")
    laden.at(2026, 3, 10, 10)
    laden.buy(rui, "20.00")  # expires 2027-03-31; reminded 30 days ahead
    laden.nightly(date(2027, 3, 1))
    laden.nightly(date(2027, 3, 2))
    [fired] = laden.fired()
    assert fired["occasion"] == "2027-03-31"
    assert fired["context"] == {"points": 20, "expires_on": "2027-03-31"}


def test_entering_a_segment_fires_for_that_segment_only(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    trigger = {"event": "segment.entered", "segment": "vip"}
    laden = Laden(new_uow, clock, tenant, auto("vip", trigger, POINTS))
    vip = laden.enrol("vip", attributes={"vip": True})
    other = laden.enrol("other")
    laden.nightly(date(2026, 3, 3))
    laden.nightly(date(2026, 3, 4))
    assert (laden.points(vip), laden.points(other)) == (50, 0)


def test_events_sent_by_the_shop_are_stored_once_by_their_id_and_fire(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(new_uow, clock, tenant, auto("korb", {"event": "cart.abandoned"}, WEBHOOK))
    lea = laden.enrol("lea")

    def send(cart: str, items: int) -> bool:
        with new_uow() as uow:
            return record_shop_event(
                uow,
                tenant_id=tenant.id,
                programme_id=laden.programme_id,
                member_id=lea,
                type=TriggerEvent.CART_ABANDONED,
                id=cart,
                data={"items": items},
            ).created

    assert send("cart-1", 3) is True
    assert send("cart-1", 4) is False  # the shop retried: nothing new
    assert send("cart-2", 1) is True
    laden.process()
    assert [(f["occasion"], f["context"]["data"]) for f in laden.fired()] == [
        ("cart-1", {"items": 3}),
        ("cart-2", {"items": 1}),
    ]


# --- date triggers ---------------------------------------------------------------------------


def test_birthdays_anniversaries_inactivity_and_statements_fire_once_per_occasion(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(
        new_uow,
        clock,
        tenant,
        auto("geburtstag", {"event": "birthday"}, WEBHOOK),
        auto("jahrestag", {"event": "anniversary.enrolment"}, WEBHOOK),
        auto("erstkauf", {"event": "anniversary.first_purchase"}, WEBHOOK),
        auto("vermisst", {"event": "inactivity", "days": 60}, WEBHOOK),
        auto("auszug", {"event": "statement", "day": 31}, WEBHOOK),
    )
    laden.at(2026, 3, 2, 9)
    ida = laden.enrol("ida", birthday=date(1990, 4, 30))
    laden.at(2026, 4, 2, 23, 30)  # a purchase late in the evening, Berlin time
    laden.buy(ida, "5.00")

    def fired_on(day: date) -> list[tuple[str, str]]:
        laden.clock.set(datetime(day.year, day.month, day.day, 3, tzinfo=BERLIN))
        before = len(laden.fired())
        run_date_triggers(new_uow, laden.programme_id, day)
        run_date_triggers(new_uow, laden.programme_id, day)  # the same day again: nothing
        laden.process()
        return [(f["automation"], f["occasion"]) for f in laden.fired()[before:]]

    assert fired_on(date(2026, 4, 30)) == [("geburtstag", "2026"), ("auszug", "2026-04")]
    assert fired_on(date(2026, 5, 31)) == [("auszug", "2026-05")]
    assert fired_on(date(2026, 6, 1)) == [("vermisst", "2026-04-02")]  # 60 days without a visit
    assert fired_on(date(2026, 6, 2)) == []  # the same inactive spell
    assert fired_on(date(2027, 3, 2)) == [("jahrestag", "2027")]
    assert fired_on(date(2027, 4, 2)) == [("erstkauf", "2027")]
    laden.at(2027, 4, 3, 10)
    laden.buy(ida, "5.00")  # back again ...
    assert fired_on(date(2027, 6, 2)) == [("vermisst", "2027-04-03")]  # ... and gone again


# --- timing, control groups, audiences, refusals ---------------------------------------------


def test_a_delayed_run_waits_for_its_time_and_then_carries_out(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(
        new_uow, clock, tenant, auto("spaeter", {"event": "member.enrolled"}, POINTS, delay="2h")
    )
    nora = laden.enrol("nora")
    laden.process()
    [run] = laden.runs()
    assert run.outcome is Outcome.PENDING
    assert run.due_at == clock.now() + timedelta(hours=2)
    clock.advance(timedelta(hours=1, minutes=59))
    assert run_due(new_uow, tenant_id=tenant.id) == 0
    clock.advance(timedelta(minutes=1))
    assert run_due(new_uow, tenant_id=tenant.id) == 1
    assert run_due(new_uow, tenant_id=tenant.id) == 0
    assert laden.points(nora) == 50
    [run] = laden.runs()
    assert (run.outcome, run.completed_at) == (Outcome.DONE, clock.now())


@pytest.mark.slow
def test_a_control_group_of_20_percent_holds_out_about_a_fifth_the_same_every_month(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    auszug = auto("auszug", {"event": "statement", "day": 1}, POINTS, control_group=20)
    laden = Laden(new_uow, clock, tenant, auszug)
    with new_uow() as uow:  # a thousand sign-ups, set up in one transaction
        members = [
            create_member(
                uow,
                programme_id=laden.programme_id,
                identifiers_={IdentifierKind.EMAIL: f"m{i}@example.de"},
            ).id
            for i in range(1_000)
        ]
        uow.commit()
    laden.at(2026, 4, 1, 3)
    assert run_date_triggers(new_uow, laden.programme_id, date(2026, 4, 1)) == 1_000
    april = {r.member_id for r in laden.runs(outcome=Outcome.HELD_OUT)}
    assert 150 <= len(april) <= 250
    with new_uow() as uow:  # held out: nothing given
        balances = {m: get_balances(uow, tenant_id=tenant.id, member_id=m) for m in members}
    assert {m for m, b in balances.items() if b.available == 0} == april
    laden.at(2026, 5, 1, 3)
    run_date_triggers(new_uow, laden.programme_id, date(2026, 5, 1))
    may = {r.member_id for r in laden.runs(outcome=Outcome.HELD_OUT) if r.occasion == "2026-05"}
    assert may == april
    with new_uow() as uow:
        [summary] = automation_summaries(uow, load_programme(uow, laden.programme_id))
    assert summary.runs[Outcome.HELD_OUT] == 2 * len(april)
    assert summary.runs[Outcome.DONE] == 2 * (1_000 - len(april))


def test_members_outside_the_audience_are_skipped_and_say_why(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    welcome = auto("vip-welcome", {"event": "member.enrolled"}, POINTS, audience={"segment": "vip"})
    laden = Laden(new_uow, clock, tenant, welcome)
    vip = laden.enrol("vip", attributes={"vip": True})
    other = laden.enrol("other")
    laden.process()
    got = {r.member_id: (r.outcome, r.reason) for r in laden.runs()}
    assert got == {vip: (Outcome.DONE, "50 points"), other: (Outcome.SKIPPED, "not_in_audience")}
    assert (laden.points(vip), laden.points(other)) == (50, 0)


def test_a_voucher_out_of_stock_is_skipped_and_the_rest_of_the_batch_goes_on(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(
        new_uow,
        clock,
        tenant,
        auto("brot", {"event": "member.enrolled"}, VOUCHER),
        auto("punkte", {"event": "member.enrolled"}, POINTS),
        stock=1,
    )
    first, second = laden.enrol("a"), laden.enrol("b")
    laden.process()
    assert laden.vouchers(first) == ["Brot"]
    assert laden.vouchers(second) == []
    skipped = laden.runs("brot", outcome=Outcome.SKIPPED)
    assert [(r.member_id, r.reason) for r in skipped] == [(second, "out_of_stock")]
    assert laden.points(first) == laden.points(second) == 50


def test_a_disabled_automation_does_nothing(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    off = auto("aus", {"event": "member.enrolled"}, POINTS, enabled=False)
    laden = Laden(new_uow, clock, tenant, off)
    member = laden.enrol("x")
    laden.process()
    assert laden.points(member) == 0
    assert laden.runs() == []


# --- exactly once --------------------------------------------------------------------------


class KilledBeforeCommit(UnitOfWork):
    """A worker that dies at the end of its batch: everything it did is rolled back."""

    def commit(self) -> None:
        raise RuntimeError("killed")


def test_a_worker_killed_mid_batch_leaves_it_whole_for_the_next_one(
    engine: Engine, new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(new_uow, clock, tenant, auto("welcome", {"event": "member.enrolled"}, POINTS))
    members = [laden.enrol(f"k{i}") for i in range(5)]
    with pytest.raises(RuntimeError, match="killed"):
        process_events(lambda: KilledBeforeCommit(engine, clock), tenant_id=tenant.id)
    assert laden.runs() == []
    assert all(laden.points(m) == 0 for m in members)
    laden.process()
    assert [laden.points(m) for m in members] == [50] * 5
    assert len(laden.runs()) == 5


def test_two_processors_at_once_fire_every_automation_exactly_once(
    engine: Engine, new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    laden = Laden(
        new_uow,
        clock,
        tenant,
        auto("welcome", {"event": "member.enrolled"}, POINTS),
        auto("hook", {"event": "member.enrolled"}, WEBHOOK),
    )
    members = [laden.enrol(f"c{i}") for i in range(60)]
    processed: list[int] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        processed.append(process_events(new_uow, limit=7, tenant_id=tenant.id))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with new_uow() as uow:
        events = uow.conn.execute(
            select(func.count()).where(outbox.c.tenant_id == tenant.id)
        ).scalar_one()
        left = uow.conn.execute(
            select(func.count()).where(
                outbox.c.tenant_id == tenant.id, outbox.c.automated_at.is_(None)
            )
        ).scalar_one()
    assert left == 0
    # every event counted by exactly one processor (some are the automations' own, later)
    assert sum(processed) <= events
    assert Counter(r.member_id for r in laden.runs("welcome")) == Counter(members)
    assert [laden.points(m) for m in members] == [50] * 60
    assert sorted(f["member_id"] for f in laden.fired()) == sorted(members)
