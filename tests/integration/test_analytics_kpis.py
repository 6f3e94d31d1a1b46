"""KPIs on a small hand-made history, on both databases: every number is worked out by hand.

Kiezcafé-style programme, 1 point per euro, a point is worth 0.01 EUR, stores ``laden`` and
``online``. All times are Berlin time; one purchase is made at 00:30 on 1 February (still
31 January in UTC) and must count for February.

January:  Anna enrols (5th) and buys 20.00 and 30.00 in the shop; Ben enrols (10th) and buys
          50.00 online; guests buy 10.00 and 6.00 (23:30 on the 31st) in the shop.
February: Anna buys 40.00 in the shop at 00:30 on the 1st; Cem enrols (3rd), pays the 5.00 Plus
          fee and buys 12.00 in the shop; a guest buys 8.00 online; Anna redeems a 30-point
          coffee (15th); Ben returns 10.00 of his online purchase (20th).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from treu.activities.model import PurchaseIn, ReturnIn
from treu.activities.service import record_purchase, record_return
from treu.analytics.model import KpiSet
from treu.analytics.periods import PeriodUnit
from treu.analytics.service import programme_kpis, uplift_report
from treu.automations.tables import automation_runs
from treu.clock import FixedClock
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.members.tables import members
from treu.memberships.service import report_payment
from treu.programmes.service import Tenant, apply_programme
from treu.rewards.service import redeem_reward
from treu.segments.tables import segment_members
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


DOCUMENT: dict[str, Any] = {
    "key": "cafe",
    "name": "Café",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "point_value": "0.01",
    "stores": [
        {"key": "laden", "name": "Laden"},
        {"key": "online", "name": "Webshop", "channel": "online"},
    ],
    "rules": [
        {
            "key": "base",
            "name": "1 Punkt je Euro",
            "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
        }
    ],
    "rewards": [
        {"key": "kaffee", "name": "Kaffee", "kind": "free_product", "sku": "K", "cost": 30}
    ],
    "memberships": [{"key": "plus", "name": "Plus", "billing": "monthly", "fee": "5.00"}],
}


class History:
    def __init__(self, new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> None:
        self.new_uow, self.clock, self.tenant = new_uow, clock, tenant
        self.clock.set(at(2025, 12, 1, 9))
        with new_uow() as uow:
            self.pid = apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id
        self.n = 0

    def enrol(self, name: str, when: datetime) -> str:
        self.clock.set(when)
        with self.new_uow() as uow:
            return enrol_member(
                uow,
                programme_id=self.pid,
                identifiers_={IdentifierKind.EMAIL: f"{name}@example.org"},
                name=name,
            ).id

    def buy(self, member: str | None, total: str, store: str, when: datetime) -> str:
        self.clock.set(when)
        self.n += 1
        external_id = f"bon-{self.n}"
        purchase = PurchaseIn(
            external_id=external_id,
            currency="EUR",
            total=Decimal(total),
            store=store,
            occurred_at=when,
        )
        with self.new_uow() as uow:
            record_purchase(uow, programme_id=self.pid, purchase=purchase, member=member)
        return external_id


@pytest.fixture
def history(new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> History:
    return build_history(new_uow, clock, tenant)


def build_history(new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> History:
    """The history of the module's docstring (test_analytics_store.py reads it too)."""
    h = History(new_uow, clock, tenant)
    anna = h.enrol("anna", at(2026, 1, 5, 9))
    h.buy(anna, "20.00", "laden", at(2026, 1, 5, 10))
    ben = h.enrol("ben", at(2026, 1, 10, 9))
    bens = h.buy(ben, "50.00", "online", at(2026, 1, 12, 18))
    h.buy(None, "10.00", "laden", at(2026, 1, 15, 8))
    h.buy(anna, "30.00", "laden", at(2026, 1, 20, 8))
    h.buy(None, "6.00", "laden", at(2026, 1, 31, 23, 30))
    h.buy(anna, "40.00", "laden", at(2026, 2, 1, 0, 30))
    cem = h.enrol("cem", at(2026, 2, 3, 9))
    clock.set(at(2026, 2, 3, 9, 5))
    with new_uow() as uow:
        report_payment(
            uow,
            tenant_id=tenant.id,
            member_id=cem,
            plan_key="plus",
            amount=Decimal("5.00"),
            currency="EUR",
            external_id="fee-1",
        )
    h.buy(cem, "12.00", "laden", at(2026, 2, 10, 12))
    h.buy(None, "8.00", "online", at(2026, 2, 14, 12))
    clock.set(at(2026, 2, 15, 12))
    with new_uow() as uow:
        redeem_reward(
            uow, tenant_id=tenant.id, member_id=anna, reward_key="kaffee", idempotency_key="r1"
        )
    clock.set(at(2026, 2, 20, 12))
    with new_uow() as uow:
        record_return(
            uow,
            programme_id=h.pid,
            ret=ReturnIn(
                external_id="ret-1",
                purchase_external_id=bens,
                amount=Decimal("10.00"),
                occurred_at=at(2026, 2, 20, 12),
            ),
        )
    clock.set(at(2026, 3, 1, 12))
    return h


def kpis(history: History, **kw: Any) -> Any:
    with history.new_uow() as uow:
        return programme_kpis(
            uow,
            programme_id=history.pid,
            unit=kw.pop("unit", PeriodUnit.MONTH),
            first=kw.pop("first", date(2026, 1, 1)),
            end=kw.pop("end", date(2026, 3, 1)),
            **kw,
        )


def test_the_kpis_of_january_are_those_worked_out_by_hand(history: History) -> None:
    # given the history above, when the owner reads January and February by month
    january, _ = kpis(history).programme_sets
    # then January has Anna and Ben, who made 3 of the 5 purchases
    assert (january.period, january.members, january.enrolments) == ("2026-01", 2, 2)
    assert (january.purchases, january.member_purchases) == (5, 3)
    assert january.enrolment_rate == Fraction(3, 5)
    assert january.value("revenue") == Decimal("116.00")
    assert january.value("member_revenue") == Decimal("100.00")
    assert january.member_revenue_share == Fraction(100, 116)
    # both members bought, Anna twice: 3 purchases by 2 active members
    assert january.active_member_rate == 1
    assert january.repeat_purchase_rate == Fraction(1, 2)
    assert january.purchase_frequency == Fraction(3, 2)
    # members spend 100.00 / 3, guests 16.00 / 2
    assert january.aov_members_minor == Fraction(10000, 3)
    assert january.value("aov_guests") == Decimal("8.00")
    assert january.display("aov_members") == "33.33"
    # nobody bought in December: retention cannot be computed
    assert january.retention_rate is None
    assert january.display("retention_rate") == "–"
    # 100 points earned, none spent: liability 100 x 0.01
    assert (january.points_issued, january.points_redeemed, january.outstanding_points) == (
        100,
        0,
        100,
    )
    assert january.liability == Decimal("1.00")
    # incremental revenue: 3 purchases x (33.33… − 8.00) = 100.00 − 24.00
    assert january.incremental_revenue == Decimal("76.0000")
    assert january.programme_cost == 0
    assert january.return_on_cost is None


def test_the_kpis_of_february_count_retention_redemptions_returns_and_fees(
    history: History,
) -> None:
    february = kpis(history).programme_sets[1]
    # Anna's 00:30 purchase on 1 February counts for February (programme time)
    assert (february.members, february.enrolments) == (3, 1)
    assert (february.purchases, february.member_purchases) == (3, 2)
    assert february.value("revenue") == Decimal("60.00")
    assert february.value("net_revenue") == Decimal("50.00")  # Ben's 10.00 came back
    assert february.active_member_rate == Fraction(2, 3)
    assert february.repeat_purchase_rate == 0
    # Anna and Ben were active in January; Anna again in February
    assert (february.previous_active, february.retained_members) == (2, 1)
    assert february.retention_rate == Fraction(1, 2)
    assert february.churn_rate == Fraction(1, 2)
    # 52 points earned, 10 reversed, 30 redeemed: 100 + 52 − 10 − 30 = 112 outstanding
    assert (february.points_issued, february.points_taken_back) == (52, 10)
    assert february.points_redeemed == 30
    assert february.redemption_rate == Fraction(30, 52)
    assert february.breakage_rate == 0
    assert february.outstanding_points == 112
    assert february.liability == Decimal("1.12")
    # the coffee cost 30 points x 0.01; Cem's fee is revenue
    assert february.rewards_cost == Decimal("0.30")
    assert february.programme_cost == Decimal("0.30")
    assert february.membership_fee_revenue == Decimal("5.00")
    # members 52.00 / 2 = 26.00 against guests 8.00: 2 x 18.00 = 36.00, 120 times the cost
    assert february.incremental_revenue == Decimal("36.0000")
    assert february.return_on_cost == 120


def test_per_store_the_purchase_kpis_split_and_the_ledger_is_not_guessed(
    history: History,
) -> None:
    report = kpis(history, split="store")
    laden_jan, laden_feb = report.splits["store:laden"]
    online_jan, online_feb = report.splits["store:online"]
    # January in the shop: Anna twice and two guests
    assert (laden_jan.purchases, laden_jan.member_purchases) == (4, 2)
    assert laden_jan.enrolment_rate == Fraction(1, 2)
    assert laden_jan.value("revenue") == Decimal("66.00")
    assert (online_jan.purchases, online_jan.active_members) == (1, 1)
    # February online: a guest's 8.00 and the return of Ben's online purchase
    assert (online_feb.purchases, online_feb.value("net_revenue")) == (1, Decimal("-2.00"))
    assert laden_feb.retained_members == 1  # Anna, in the shop both months
    # a store's points are not known: the ledger has no store
    assert laden_feb.points_issued is None
    assert laden_feb.liability is None
    assert laden_feb.display("redemption_rate") == "–"


def test_a_weekly_report_follows_iso_weeks_in_programme_time(history: History) -> None:
    report = kpis(history, unit=PeriodUnit.WEEK, first=date(2026, 1, 26), end=date(2026, 2, 2))
    (week,) = report.programme_sets
    # Monday 26 January to Sunday 1 February: the 6.00 guest and Anna's 00:30 purchase
    assert (week.period, week.first, week.end) == ("2026-W05", date(2026, 1, 26), date(2026, 2, 2))
    assert (week.purchases, week.member_purchases) == (2, 1)
    # Anna bought in week 4 too (20 January): retained
    assert (week.previous_active, week.retained_members) == (1, 1)


def test_one_store_only(history: History) -> None:
    report = kpis(history, store="online")
    assert list(report.splits) == ["store:online"]


def test_kpis_as_rows_keep_exact_counts_and_round_rates(history: History) -> None:
    january: KpiSet = kpis(history).programme_sets[0]
    row = january.as_row()
    assert row["enrolment_rate"] == "0.600000"
    assert row["member_revenue_share"] == "0.862069"
    assert row["revenue"] == "116.00"
    assert row["purchases"] == 5
    assert row["retention_rate"] is None


def _members_by_name(history: History) -> dict[str, str]:
    with history.new_uow() as uow:
        rows = uow.conn.execute(
            select(members.c.name, members.c.id).where(members.c.programme_id == history.pid)
        )
        return {name: member_id for name, member_id in rows}


def test_per_segment_the_members_of_each_segment_are_counted(history: History) -> None:
    # given the segment "stammgast" holds Anna, "neu" holds Ben and Cem (as a recompute left it)
    ids = _members_by_name(history)
    with history.new_uow() as uow:
        uow.conn.execute(
            insert(segment_members),
            [
                {
                    "programme_id": history.pid,
                    "segment": segment,
                    "member_id": ids[name],
                    "tenant_id": history.tenant.id,
                    "entered_at": at(2026, 2, 1),
                }
                for segment, name in (("stammgast", "anna"), ("neu", "ben"), ("neu", "cem"))
            ],
        )
        uow.commit()
    report = kpis(history, split="segment")
    anna_jan, anna_feb = report.splits["segment:stammgast"]
    _, new_feb = report.splits["segment:neu"]
    # Anna alone: her two January purchases, both by a member (no guests in a segment)
    assert (anna_jan.members, anna_jan.purchases, anna_jan.enrolment_rate) == (1, 2, 1)
    assert anna_jan.aov_guests_minor is None
    # February: Anna redeemed 30 of her 90 points
    assert (anna_feb.points_issued, anna_feb.points_redeemed, anna_feb.outstanding_points) == (
        40,
        30,
        60,
    )
    # Ben and Cem in February: Cem bought, Ben returned 10.00 and paid nothing else; Cem's fee
    assert (new_feb.members, new_feb.active_members, new_feb.retained_members) == (2, 1, 0)
    assert new_feb.value("net_revenue") == Decimal("2.00")
    assert new_feb.membership_fee_revenue == Decimal("5.00")


def test_uplift_of_an_automation_against_its_held_out_members(history: History) -> None:
    # given a win-back automation that acted on Anna and Cem and held Ben out, on 1 February
    ids = _members_by_name(history)
    when = at(2026, 2, 1)
    with history.new_uow() as uow:
        uow.conn.execute(
            insert(automation_runs),
            [
                {
                    "id": f"aur_{name}",
                    "tenant_id": history.tenant.id,
                    "programme_id": history.pid,
                    "automation": "win_back",
                    "member_id": ids[name],
                    "occasion": "2026-02",
                    "trigger": "inactivity",
                    "outcome": outcome,
                    "context": {},
                    "due_at": when,
                    "created_at": when,
                    "completed_at": when,
                }
                for name, outcome in (("anna", "done"), ("cem", "done"), ("ben", "held_out"))
            ],
        )
        uow.commit()
    with history.new_uow() as uow:
        (result,) = uplift_report(uow, programme_id=history.pid, window_days=28)
    # then within 28 days Anna (40.00, 40 points) and Cem (12.00, 12 points) bought, Ben did not
    assert (result.automation, result.treated, result.control) == ("win_back", 2, 1)
    assert (result.purchase_rate_treated, result.purchase_rate_control) == (1.0, 0.0)
    assert result.revenue_treated_minor == 2600.0
    assert result.points_treated == 26.0
    # Ben's return took 10 points back: his points in the window are −10
    assert result.points_control == -10.0
    assert result.purchase_rate is not None
    assert result.purchase_rate.estimate == 1.0
    assert result.revenue is None  # one held-out member: no variance to go by
