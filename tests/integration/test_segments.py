"""Segments as worked examples on both databases: each kind of condition, the built-ins, the
stored membership and its events, static uploads, and a daylight-saving switch in Berlin.

The programme: Kiezcafé-like, EUR, Europe/Berlin, Bronze/Silber/Gold tiers and a paid plan.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from treu.activities.model import ActionIn, LineIn, PurchaseIn, ReturnIn
from treu.activities.service import record_action, record_purchase, record_return
from treu.clock import FixedClock
from treu.errors import Conflict, ErrorCode, NotFound, TreuError
from treu.ledger.service import get_balances
from treu.members.enrolment import enrol_member
from treu.members.model import Channel, IdentifierKind
from treu.members.service import record_consent, set_blocked
from treu.memberships.service import report_payment
from treu.outbox.service import list_events
from treu.programmes.model import Programme
from treu.programmes.service import Tenant, apply_programme, load_programme
from treu.rewards.service import redeem_reward
from treu.segments import service as segments
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")

MORNING = {
    "key": "morning-regulars",
    "name": "Frühaufsteher",
    "all": [
        {
            "purchases": {
                "min": 2,
                "within_days": 30,
                "weekdays": ["mon", "tue", "wed", "thu", "fri"],
                "between": ["07:00", "09:00"],
            }
        }
    ],
}


def document(*segment_defs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "key": "kiez",
        "name": "Kiezcafé",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "rules": [
            {
                "key": "base",
                "name": "1 Punkt je Euro",
                "effect": {"type": "per_amount", "points": 1, "per": "1.00"},
            }
        ],
        "tiers": {
            "levels": [
                {"key": "bronze", "name": "Bronze", "threshold": 0},
                {"key": "silber", "name": "Silber", "threshold": "200.00"},
                {"key": "gold", "name": "Gold", "threshold": "400.00"},
            ]
        },
        "memberships": [
            {"key": "plus", "name": "Plus", "billing": "monthly", "fee": "5.00"},
            {"key": "free", "name": "Freunde", "billing": "lifetime", "fee": "0"},
        ],
        "segments": list(segment_defs),
        **extra,
    }


class Cafe:
    def __init__(
        self,
        new_uow: NewUow,
        clock: FixedClock,
        tenant: Tenant,
        *segment_defs: dict[str, Any],
        **extra: Any,
    ) -> None:
        self.new_uow, self.clock, self.tenant = new_uow, clock, tenant
        doc = document(*segment_defs, **extra)
        with new_uow() as uow:
            self.programme_id = apply_programme(uow, tenant_id=tenant.id, document=doc).programme_id
        self._n = 0

    def on(self, when: datetime) -> None:
        self.clock.set(when)

    def enrol(self, email: str, **fields: Any) -> str:
        with self.new_uow() as uow:
            return enrol_member(
                uow,
                programme_id=self.programme_id,
                identifiers_={IdentifierKind.EMAIL: email},
                **fields,
            ).id

    def buy(
        self, member: str, at: datetime, price: str = "3.50", lines: list[LineIn] | None = None
    ) -> str:
        self._n += 1
        external = f"o{self._n}"
        self.clock.set(at)  # recorded as it happens
        with self.new_uow() as uow:
            record_purchase(
                uow,
                programme_id=self.programme_id,
                member=member,
                purchase=PurchaseIn(
                    external_id=external,
                    occurred_at=at,
                    currency="EUR",
                    lines=lines or [LineIn(sku="KAFFEE", unit_price=price)],
                ),
            )
        return external

    def give_back(self, purchase: str, amount: str, at: datetime) -> None:
        self.clock.set(at)
        with self.new_uow() as uow:
            record_return(
                uow,
                programme_id=self.programme_id,
                ret=ReturnIn(
                    external_id=f"r-{purchase}-{amount}",
                    purchase_external_id=purchase,
                    amount=Decimal(amount),
                ),
            )

    def act(self, member: str, at: datetime, kind: str = "review") -> None:
        self._n += 1
        self.clock.set(at)
        with self.new_uow() as uow:
            record_action(
                uow,
                programme_id=self.programme_id,
                member=member,
                action=ActionIn(external_id=f"a{self._n}", type=kind),
            )

    def pay(self, member: str, plan: str, fee: str, at: datetime) -> None:
        self._n += 1
        self.clock.set(at)
        with self.new_uow() as uow:
            report_payment(
                uow,
                tenant_id=self.tenant.id,
                member_id=member,
                plan_key=plan,
                amount=Decimal(fee),
                currency="EUR",
                external_id=f"pay{self._n}",
            )

    def consent(self, member: str, channel: Channel, granted: bool, at: datetime) -> None:
        self.clock.set(at)
        with self.new_uow() as uow:
            record_consent(
                uow,
                tenant_id=self.tenant.id,
                member_id=member,
                channel=channel,
                granted=granted,
                source="test",
            )

    def programme(self, uow: UnitOfWork) -> Programme:
        return load_programme(uow, self.programme_id)

    def matches(self, segment: str, member: str, at: datetime) -> bool:
        with self.new_uow() as uow:
            return segments.member_matches(uow, self.programme(uow), segment, member, at=at)

    def recompute(self, day: date) -> int:
        return segments.recompute_segments(self.new_uow, self.programme_id, day)

    def members_of(self, segment: str) -> list[str]:
        with self.new_uow() as uow:
            return segments.segment_member_ids(uow, self.programme(uow), segment)

    def events(self) -> list[tuple[str, str, str]]:
        with self.new_uow() as uow:
            rows = list_events(uow, tenant_id=self.tenant.id)
        return [
            (e["type"], e["payload"]["segment"], e["payload"]["member_id"])
            for e in rows
            if e["type"].startswith("segment.")
        ]


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def test_weekday_morning_regulars_enter_once_and_leave_when_the_habit_stops(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant, MORNING)
    cafe.on(berlin(2026, 2, 1, 10))
    mia = cafe.enrol("mia@example.org")
    ben = cafe.enrol("ben@example.org")
    cafe.buy(mia, berlin(2026, 2, 2, 7, 30))  # Monday morning
    cafe.buy(mia, berlin(2026, 2, 3, 8, 59))  # Tuesday morning
    cafe.buy(ben, berlin(2026, 2, 2, 9, 0))  # 09:00 is outside 07:00–09:00
    cafe.buy(ben, berlin(2026, 2, 7, 8, 0))  # a Saturday
    cafe.on(berlin(2026, 2, 10, 1))

    assert cafe.matches("morning-regulars", mia, berlin(2026, 2, 10, 0))
    assert not cafe.matches("morning-regulars", ben, berlin(2026, 2, 10, 0))
    assert cafe.recompute(date(2026, 2, 10)) > 0
    assert cafe.members_of("morning-regulars") == [mia]
    assert ("segment.entered", "morning-regulars", mia) in cafe.events()

    before = cafe.events()
    assert cafe.recompute(date(2026, 2, 10)) == 0  # the same day again: nothing changes
    assert cafe.events() == before

    # 30 days after the Tuesday, the Monday has left the window: one purchase is not enough.
    cafe.on(berlin(2026, 3, 5, 1))
    cafe.recompute(date(2026, 3, 5))
    assert cafe.members_of("morning-regulars") == []
    assert ("segment.left", "morning-regulars", mia) in cafe.events()[len(before) :]


def test_purchases_around_the_berlin_dst_switch_are_read_on_the_local_clock(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    """Clocks went forward on Sunday 29 March 2026. 07:30 is 06:30 UTC on the Friday before and
    05:30 UTC on the Monday after; 09:15 on the Tuesday is 07:15 UTC. In programme time Mia
    bought twice between 07:00 and 09:00 on weekdays and Ben once; on the UTC clock it would be
    Ben, not Mia."""
    cafe = Cafe(new_uow, clock, tenant, MORNING)
    cafe.on(berlin(2026, 3, 1, 10))
    mia = cafe.enrol("mia@example.org")
    ben = cafe.enrol("ben@example.org")
    cafe.buy(mia, berlin(2026, 3, 27, 7, 30))
    cafe.buy(mia, berlin(2026, 3, 30, 7, 30))
    cafe.buy(ben, berlin(2026, 3, 27, 7, 30))
    cafe.buy(ben, berlin(2026, 3, 31, 9, 15))
    assert berlin(2026, 3, 30, 7, 30).utcoffset() == timedelta(hours=2)  # summer time by then

    cafe.on(berlin(2026, 4, 1, 1))
    cafe.recompute(date(2026, 4, 1))
    assert cafe.members_of("morning-regulars") == [mia]
    assert cafe.matches("morning-regulars", mia, berlin(2026, 4, 1, 0))
    assert not cafe.matches("morning-regulars", ben, berlin(2026, 4, 1, 0))


def by_condition() -> list[dict[str, Any]]:
    def one(key: str, condition: dict[str, Any]) -> dict[str, Any]:
        return {"key": key, "name": key, "all": [condition]}

    return [
        one("recent", {"last_purchase": {"within_days": 7}}),
        one("quiet", {"inactive": {"days": 30}}),
        one("spenders", {"spend": {"min": "20.00", "within_days": 60}}),
        one("gold", {"tier": ["gold"]}),
        one("plus", {"membership": ["plus"]}),
        one("march", {"active_between": {"from": "2026-03-01", "to": "2026-03-31"}}),
        one("cake", {"bought": {"categories": ["kuchen"], "within_days": 60}}),
        one("quick", {"first_purchase_within_days": 3}),
        one("fresh", {"enrolled_within_days": 10}),
        one("may-born", {"birthday": {"month": 5}}),
        one("berliners", {"attribute": {"name": "city", "equals": "Berlin"}}),
        one("mailable", {"consent": "email"}),
    ]


def test_each_kind_of_condition_on_stored_activities(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant, *by_condition())
    cafe.on(berlin(2026, 2, 1, 10))
    mia = cafe.enrol("mia@example.org", birthday=date(1990, 5, 3), attributes={"city": "Berlin"})
    ben = cafe.enrol("ben@example.org", attributes={"city": "Hamburg"})
    cafe.on(berlin(2026, 3, 25, 10))
    zoe = cafe.enrol("zoe@example.org")  # enrolled a week before the run, nothing else

    cafe.buy(mia, berlin(2026, 2, 2, 9), "450.00")  # day one: Gold, a quick first purchase
    cake = LineIn(sku="T1", category="kuchen", brand="konditorei", unit_price=Decimal("4.20"))
    cafe.buy(mia, berlin(2026, 3, 28, 15), lines=[cake])  # recent, cake, active in March
    big = cafe.buy(ben, berlin(2026, 2, 20, 12), "30.00")  # 30.00, then 15.00 back: 15.00 net
    cafe.give_back(big, "15.00", berlin(2026, 2, 21, 12))
    cafe.act(ben, berlin(2026, 2, 22, 12))  # his last activity: 38 days before the run
    cafe.pay(ben, "plus", "5.00", berlin(2026, 3, 20, 12))
    cafe.pay(mia, "free", "0", berlin(2026, 3, 20, 12))
    cafe.consent(mia, Channel.EMAIL, True, berlin(2026, 3, 1, 12))
    cafe.consent(ben, Channel.EMAIL, True, berlin(2026, 3, 1, 12))
    cafe.consent(ben, Channel.EMAIL, False, berlin(2026, 3, 2, 12))  # withdrawn: the latest wins

    day = date(2026, 4, 1)
    cafe.on(berlin(2026, 4, 1, 1))
    cafe.recompute(day)
    expected = {
        "recent": [mia],
        "quiet": [ben],
        "spenders": [mia],  # Ben's 15.00 net is below 20.00
        "gold": [mia],
        "plus": [ben],
        "march": [mia],  # Ben's payment and consents are no activities
        "cake": [mia],
        "quick": [mia],
        "fresh": [zoe],
        "may-born": [mia],
        "berliners": [mia],
        "mailable": [mia],
    }
    assert {k: cafe.members_of(k) for k in expected} == {k: sorted(v) for k, v in expected.items()}
    at = berlin(2026, 4, 1, 0)
    for key, members in expected.items():
        for member in (mia, ben, zoe):
            assert cafe.matches(key, member, at) == (member in members), (key, member)


def test_the_built_in_segments(new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> None:
    cafe = Cafe(new_uow, clock, tenant)
    cafe.on(berlin(2025, 10, 1, 10))
    lapsed = cafe.enrol("lapsed@example.org")
    cafe.buy(lapsed, berlin(2025, 10, 2, 10))  # then nothing for more than 90 days
    never = cafe.enrol("never@example.org")  # enrolled long ago, never bought
    gold = cafe.enrol("gold@example.org")
    cafe.buy(gold, berlin(2026, 3, 1, 10), "500.00")
    cafe.on(berlin(2026, 3, 20, 10))
    new = cafe.enrol("new@example.org")
    plus = cafe.enrol("plus@example.org")
    cafe.pay(plus, "plus", "5.00", berlin(2026, 3, 21, 10))
    cafe.buy(plus, berlin(2026, 3, 21, 11))

    cafe.on(berlin(2026, 4, 1, 1))
    cafe.recompute(date(2026, 4, 1))
    assert cafe.members_of("new") == sorted([new, plus])
    assert cafe.members_of("active") == sorted([gold, plus])
    assert cafe.members_of("inactive") == sorted([lapsed, never])
    assert cafe.members_of("premium") == sorted([gold, plus])


def test_a_programme_segment_overrides_a_built_in_and_a_removed_one_empties(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    mailable = {"key": "mailable", "name": "M", "all": [{"consent": "email"}]}
    cafe = Cafe(new_uow, clock, tenant, mailable)
    cafe.on(berlin(2026, 3, 1, 10))
    mia = cafe.enrol("mia@example.org", consents_={Channel.EMAIL: True})
    cafe.on(berlin(2026, 3, 2, 1))
    cafe.recompute(date(2026, 3, 2))
    assert cafe.members_of("mailable") == [mia]
    assert cafe.members_of("new") == [mia]

    doc = document({"key": "new", "name": "Neu", "all": [{"enrolled_within_days": 1}]})
    with new_uow() as uow:
        apply_programme(uow, tenant_id=tenant.id, document=doc)
    cafe.on(berlin(2026, 3, 5, 1))
    cafe.recompute(date(2026, 3, 5))
    assert cafe.members_of("new") == []
    assert cafe.members_of("mailable") == []
    left = [e for e in cafe.events() if e[0] == "segment.left"]
    assert sorted(left) == [("segment.left", "mailable", mia), ("segment.left", "new", mia)]
    with new_uow() as uow, pytest.raises(NotFound) as caught:
        segments.segment_size(uow, cafe.programme(uow), "mailable")
    assert caught.value.code is ErrorCode.UNKNOWN_SEGMENT


def test_a_blocked_member_leaves_every_segment(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant)
    cafe.on(berlin(2026, 3, 1, 10))
    mia = cafe.enrol("mia@example.org")
    cafe.recompute(date(2026, 3, 2))
    assert cafe.members_of("new") == [mia]
    with new_uow() as uow:
        set_blocked(uow, tenant_id=tenant.id, member_id=mia, blocked=True)
    cafe.recompute(date(2026, 3, 3))
    assert cafe.members_of("new") == []
    assert not cafe.matches("new", mia, berlin(2026, 3, 3, 0))
    assert cafe.events()[-1] == ("segment.left", "new", mia)


VIP = {"key": "vip", "name": "VIP", "static": True, "all": [{"consent": "email"}]}


def test_a_static_upload_reports_unknown_rows_and_keeps_the_conditions(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant, VIP)
    cafe.on(berlin(2026, 3, 1, 10))
    mia = cafe.enrol("mia@example.org", consents_={Channel.EMAIL: True})
    ben = cafe.enrol("ben@example.org")  # no e-mail consent: uploaded, but not in
    csv = "name;email\nMia;Mia@Example.org\nBen;ben@example.org\nWer?;who@example.org\n;\n"
    with new_uow() as uow:
        report = segments.upload_static_csv(uow, cafe.programme(uow), "vip", csv)
    assert (report.rows, report.members, report.entered, report.left) == (3, 2, 1, 0)
    assert [(r.line, r.reference, r.code) for r in report.rejected] == [
        (4, "email:who@example.org", "member_not_found")
    ]
    assert cafe.members_of("vip") == [mia]
    assert cafe.events() == [("segment.entered", "vip", mia)]

    with new_uow() as uow:
        again = segments.upload_static_segment(uow, cafe.programme(uow), "vip", [mia, ben])
    assert (again.entered, again.left) == (0, 0)  # the same list: nothing changes
    cafe.on(berlin(2026, 3, 2, 1))
    cafe.recompute(date(2026, 3, 2))  # the nightly run agrees with the upload's recompute
    assert cafe.members_of("vip") == [mia]
    assert [e for e in cafe.events() if e[1] == "vip"] == [("segment.entered", "vip", mia)]

    with new_uow() as uow:
        emptied = segments.upload_static_segment(uow, cafe.programme(uow), "vip", [ben])
    assert (emptied.members, emptied.left) == (1, 1)
    assert cafe.members_of("vip") == []


def test_only_a_static_segment_takes_an_upload(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant, VIP)
    cafe.on(berlin(2026, 3, 1, 10))
    mia = cafe.enrol("mia@example.org")
    with new_uow() as uow, pytest.raises(Conflict) as caught:
        segments.upload_static_segment(uow, cafe.programme(uow), "new", [mia])
    assert caught.value.code is ErrorCode.SEGMENT_NOT_STATIC
    with new_uow() as uow, pytest.raises(NotFound):
        segments.upload_static_segment(uow, cafe.programme(uow), "nope", [mia])


def test_an_on_demand_recompute_of_one_segment_leaves_the_others_alone(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    cafe = Cafe(new_uow, clock, tenant, MORNING)
    cafe.on(berlin(2026, 3, 2, 10))
    mia = cafe.enrol("mia@example.org")
    with new_uow() as uow:
        done = segments.recompute_segment(uow, programme_id=cafe.programme_id, segment="new")
    assert (done.entered, done.left, done.sizes) == (1, 0, {"new": 1})
    assert cafe.members_of("new") == [mia]
    assert cafe.members_of("inactive") == []
    with new_uow() as uow:
        views = {v.definition.key: v for v in segments.list_segments(uow, cafe.programme(uow))}
        preview = segments.preview_members(uow, cafe.programme(uow), "new")
    assert views["new"].size == 1
    assert views["new"].built_in
    assert views["morning-regulars"].size == 0
    assert not views["morning-regulars"].built_in
    assert [(p.id, p.email) for p in preview] == [(mia, "m**@example.org")]


def test_rules_and_rewards_limited_to_a_segment_follow_its_membership(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant
) -> None:
    vip_bonus = {
        "key": "vip-bonus",
        "name": "VIP: 5 Punkte extra",
        "when": {"segments": ["vip"]},
        "effect": {"type": "bonus", "points": 5},
    }
    lounge = {"key": "lounge", "name": "Lounge", "kind": "custom", "cost": 5, "segments": ["vip"]}
    base = document()["rules"][0]
    cafe = Cafe(new_uow, clock, tenant, VIP, rules=[base, vip_bonus], rewards=[lounge])
    cafe.on(berlin(2026, 3, 2, 10))
    mia = cafe.enrol("mia@example.org", consents_={Channel.EMAIL: True})
    ben = cafe.enrol("ben@example.org", consents_={Channel.EMAIL: True})

    def points(member: str) -> int:
        with new_uow() as uow:
            return get_balances(uow, tenant_id=tenant.id, member_id=member).available

    def redeem(member: str, key: str) -> ErrorCode | None:
        try:
            with new_uow() as uow:
                redeem_reward(
                    uow,
                    tenant_id=tenant.id,
                    member_id=member,
                    reward_key="lounge",
                    idempotency_key=key,
                )
        except TreuError as error:
            return error.code
        return None

    # given nobody in the VIP list yet: 3.50 earns 3 points, no bonus, no lounge
    cafe.buy(mia, berlin(2026, 3, 2, 11))
    assert points(mia) == 3
    # when Mia is uploaded into the VIP list
    with new_uow() as uow:
        segments.upload_static_segment(uow, cafe.programme(uow), "vip", [mia])
    # then her purchases earn the bonus and the VIP reward is hers to redeem; not Ben's
    cafe.buy(mia, berlin(2026, 3, 2, 12))
    cafe.buy(ben, berlin(2026, 3, 2, 12, 5))
    assert (points(mia), points(ben)) == (3 + 3 + 5, 3)
    assert redeem(ben, "ben-1") is ErrorCode.REWARD_NOT_ELIGIBLE
    assert redeem(mia, "mia-1") is None
    assert points(mia) == 11 - 5
    # and a return judges the purchase by the segments it was made in, even after she left
    with new_uow() as uow:
        segments.upload_static_segment(uow, cafe.programme(uow), "vip", [])
    cafe.give_back("o2", "1.75", berlin(2026, 3, 2, 13))
    # (half of 3.50 back: 1 base point left of 3, the bonus kept)
    assert points(mia) == 6 - 2
