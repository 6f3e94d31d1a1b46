"""The set-based recompute equals asking about each member on their own (Hypothesis).

Members with random histories — purchases at any time of day around the Berlin DST switch,
partial returns, actions, consents given and withdrawn, a paid plan, birthdays, attributes —
are written through the real services. The nightly recompute (a few grouped queries for the
whole programme) must store exactly the members :func:`member_matches` (one member at a time,
through the tiers and memberships packages' own building blocks) finds, for every segment.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from treu.activities.model import ActionIn, LineIn, PurchaseIn, ReturnIn
from treu.activities.service import record_action, record_purchase, record_return
from treu.clock import FixedClock
from treu.ledger.model import start_of_day
from treu.members.enrolment import enrol_member
from treu.members.model import Channel, IdentifierKind
from treu.members.service import record_consent
from treu.memberships.service import report_payment
from treu.programmes.service import apply_programme, create_tenant, load_programme
from treu.segments import service as segments
from treu.storage.uow import UnitOfWork

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 1, 1, tzinfo=BERLIN)
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def one(key: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "name": key, "all": list(conditions)}


SEGMENTS = [
    one(
        "mornings",
        {
            "purchases": {
                "min": 2,
                "within_days": 30,
                "weekdays": WEEKDAYS,
                "between": ["07:00", "09:00"],
            }
        },
    ),
    one("night-owls", {"purchases": {"min": 1, "within_days": 60, "between": ["22:00", "02:00"]}}),
    one("spenders", {"spend": {"min": "20.00", "max": "400.00", "within_days": 45}}),
    one("paying", {"spend": {"min": "0.01"}}),  # a full return leaves nothing
    one("recent", {"last_purchase": {"within_days": 14}}),
    one("quiet", {"inactive": {"days": 20}}),
    one("gold", {"tier": ["gold"]}),
    one("plus", {"membership": ["plus"]}),
    one("late-march", {"active_between": {"from": "2026-03-25", "to": "2026-03-31"}}),
    one("cake", {"bought": {"categories": ["kuchen"], "brands": ["fritz"], "within_days": 60}}),
    one("quick", {"first_purchase_within_days": 5}),
    one("fresh", {"enrolled_within_days": 20}),
    one("birthday", {"birthday": "this_month"}),
    one("berliners", {"attribute": {"name": "city", "in": ["Berlin", None]}}),
    one("mailable", {"consent": "email"}),
    {
        "key": "nested",
        "name": "nested",
        "all": [{"not": {"consent": "sms"}}],
        "any": [{"purchases": {"max": 1}}, {"all": [{"tier": ["silber"]}, {"consent": "push"}]}],
    },
]


def document(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "name": "Kiezcafé",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "rules": [{"key": "base", "name": "1/EUR", "effect": {"type": "per_amount", "points": 1}}],
        "tiers": {
            "levels": [
                {"key": "bronze", "name": "Bronze", "threshold": 0},
                {"key": "silber", "name": "Silber", "threshold": "100.00"},
                {"key": "gold", "name": "Gold", "threshold": "250.00"},
            ]
        },
        "memberships": [{"key": "plus", "name": "Plus", "billing": "monthly", "fee": "5.00"}],
        "segments": SEGMENTS,
    }


@dataclass(frozen=True)
class Step:
    minutes: int  # after the member's enrolment
    kind: str  # buy, return, act, consent, pay
    amount: int = 100  # minor units for a purchase
    cake: bool = False
    channel: str = "email"
    granted: bool = True


steps = st.builds(
    Step,
    minutes=st.integers(min_value=0, max_value=120 * 24 * 60),
    kind=st.sampled_from(["buy", "buy", "buy", "return", "return", "act", "consent", "pay"]),
    amount=st.integers(min_value=50, max_value=20_000),
    cake=st.booleans(),
    channel=st.sampled_from(["email", "sms", "push"]),
    granted=st.booleans(),
)
members = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=90 * 24 * 60),  # enrolled, minutes after 1 January
        st.one_of(st.none(), st.dates(min_value=date(1950, 1, 1), max_value=date(2008, 12, 31))),
        st.sampled_from([None, "Berlin", "Hamburg"]),
        st.lists(steps, max_size=8),
    ),
    min_size=1,
    max_size=5,
)


class History:
    def __init__(self, engine: Engine) -> None:
        self.clock = FixedClock(START)
        self.engine = engine
        with self.uow() as uow:
            self.tenant_id = create_tenant(uow, key=f"seg-{uuid.uuid4().hex[:10]}").id
        with self.uow() as uow:
            applied = apply_programme(uow, tenant_id=self.tenant_id, document=document("kiez"))
        self.programme_id = applied.programme_id
        self.n = 0

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, self.clock)

    def member(self, enrolled: datetime, born: date | None, city: str | None) -> str:
        self.clock.set(enrolled)
        with self.uow() as uow:
            return enrol_member(
                uow,
                programme_id=self.programme_id,
                identifiers_={IdentifierKind.EMAIL: f"m{uuid.uuid4().hex[:10]}@example.org"},
                birthday=born,
                attributes={"city": city} if city else {},
            ).id

    def step(self, member: str, at: datetime, step: Step, bought: list[tuple[str, int]]) -> None:
        self.n += 1
        self.clock.set(at)
        with self.uow() as uow:
            if step.kind == "buy":
                line = LineIn(
                    sku="S",
                    category="kuchen" if step.cake else "kaffee",
                    unit_price=Decimal(step.amount) / 100,
                )
                purchase = PurchaseIn(external_id=f"p{self.n}", currency="EUR", lines=[line])
                record_purchase(
                    uow, programme_id=self.programme_id, member=member, purchase=purchase
                )
                bought.append((purchase.external_id, step.amount))
            elif step.kind == "return" and bought:
                external, amount = bought.pop(0)  # each purchase returned once: all or half
                back = amount if step.cake else amount // 2
                ret = ReturnIn(
                    external_id=f"r{self.n}",
                    purchase_external_id=external,
                    amount=Decimal(back) / 100,
                )
                record_return(uow, programme_id=self.programme_id, ret=ret)
            elif step.kind == "act":
                action = ActionIn(external_id=f"a{self.n}", type="review")
                record_action(uow, programme_id=self.programme_id, member=member, action=action)
            elif step.kind == "consent":
                record_consent(
                    uow,
                    tenant_id=self.tenant_id,
                    member_id=member,
                    channel=Channel(step.channel),
                    granted=step.granted,
                    source="test",
                )
            elif step.kind == "pay":
                report_payment(
                    uow,
                    tenant_id=self.tenant_id,
                    member_id=member,
                    plan_key="plus",
                    amount=Decimal("5.00"),
                    currency="EUR",
                    external_id=f"pay{self.n}",
                )


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(members, st.dates(min_value=date(2026, 3, 1), max_value=date(2026, 5, 1)))
def test_the_recompute_stores_exactly_the_members_member_matches_finds(
    engine: Engine, people: list[tuple[int, date | None, str | None, list[Step]]], day: date
) -> None:
    history = History(engine)
    ids = []
    for enrolled_after, born, city, member_steps in people:
        enrolled = START + timedelta(minutes=enrolled_after)
        member = history.member(enrolled, born, city)
        ids.append(member)
        bought: list[tuple[str, int]] = []
        for step in sorted(member_steps, key=lambda s: s.minutes):
            history.step(member, enrolled + timedelta(minutes=step.minutes), step, bought)

    history.clock.set(start_of_day(day, BERLIN) + timedelta(hours=1))
    segments.recompute_segments(history.uow, history.programme_id, day)
    at = start_of_day(day, BERLIN)
    with history.uow() as uow:
        programme = load_programme(uow, history.programme_id)
        for defn in segments.segments_of(programme):
            stored = segments.segment_member_ids(uow, programme, defn.key)
            one_by_one = sorted(
                m for m in ids if segments.member_matches(uow, programme, defn.key, m, at=at)
            )
            assert stored == one_by_one, defn.key
    # and a second run of the same day changes nothing
    assert segments.recompute_segments(history.uow, history.programme_id, day) == 0
