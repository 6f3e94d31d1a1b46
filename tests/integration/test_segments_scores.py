"""Segments on the analytics scores (RFM segment, churn risk, P(alive)), on both databases:
an automation on an "at risk" segment reaches exactly the members the RFM scoring puts there.

A café from January to June 2026: ten regulars buy every two weeks all along, ten lapsed
members bought four times in January and never again, ten members bought once. The nightly
run of 1 July recomputes the segments (set-based, with the scores of the whole programme) and
the automation acts on everyone who entered.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from treu.activities.model import PurchaseIn
from treu.activities.service import record_purchase
from treu.analytics.service import member_scores
from treu.automations.tables import automation_runs
from treu.clock import FixedClock
from treu.jobs.nightly import run_nightly
from treu.ledger.model import start_of_day
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import Tenant, apply_programme, load_programme
from treu.segments.service import evaluate, member_matches, segment_def, segment_member_ids
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
BERLIN = ZoneInfo("Europe/Berlin")
JULY_1 = date(2026, 7, 1)

DOCUMENT: dict[str, Any] = {
    "key": "cafe",
    "name": "Café",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "rules": [{"key": "p", "name": "1 je Euro", "effect": {"type": "per_amount", "points": 1}}],
    "segments": [
        {"key": "at-risk", "name": "At risk", "all": [{"rfm_segment": ["at_risk"]}]},
        {"key": "slipping", "name": "Slipping", "all": [{"churn_risk": {"min": 0.5}}]},
        {"key": "alive", "name": "Alive", "all": [{"p_alive": {"min": 0.9, "max": 1}}]},
    ],
    "automations": [
        {
            "key": "win-back",
            "name": "Win back",
            "trigger": {"event": "segment.entered", "segment": "at-risk"},
            "action": {"type": "points", "points": 100, "reason": "Wir vermissen dich"},
        }
    ],
}


@pytest.fixture
def cafe(new_uow: NewUow, clock: FixedClock, tenant: Tenant) -> Cafe:
    clock.set(datetime(2026, 1, 1, 8, tzinfo=BERLIN))
    with new_uow() as uow:
        pid = apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id
    rng = random.Random(7)
    plans: list[tuple[str, list[datetime]]] = []
    start = datetime(2026, 1, 2, 10, tzinfo=BERLIN)
    for i in range(10):  # regulars: every two weeks, January to June
        plans.append((f"regular{i}", [start + timedelta(days=14 * k + i) for k in range(12)]))
    for i in range(10):  # lapsed: four times in January
        plans.append((f"lapsed{i}", [start + timedelta(days=7 * k + i) for k in range(4)]))
    for i in range(10):  # once, some time in the half year
        plans.append((f"once{i}", [start + timedelta(days=rng.randrange(0, 175))]))
    bon, ids = 0, {}
    for name, days in plans:
        clock.set(start - timedelta(hours=1))
        with new_uow() as uow:
            member = enrol_member(
                uow,
                programme_id=pid,
                identifiers_={IdentifierKind.EMAIL: f"{name}@example.org"},
                name=name,
            ).id
        ids[name] = member
        for when in days:
            bon += 1
            clock.set(when)
            total = Decimal(rng.randrange(300, 3000)) / 100
            purchase = PurchaseIn(
                external_id=f"bon-{bon}", currency="EUR", total=total, occurred_at=when
            )
            with new_uow() as uow:
                record_purchase(uow, programme_id=pid, purchase=purchase, member=member)
    clock.set(datetime(2026, 7, 1, 9, tzinfo=BERLIN))
    return Cafe(pid, ids)


@dataclass(frozen=True)
class Cafe:
    pid: str
    ids: dict[str, str]  # name -> member id


def test_an_automation_on_the_at_risk_segment_reaches_exactly_the_rfm_at_risk_members(
    new_uow: NewUow, cafe: Cafe
) -> None:
    pid = cafe.pid
    # given the scores the analytics give as of the start of 1 July
    with new_uow() as uow:
        programme = load_programme(uow, pid)
        at = start_of_day(JULY_1, programme.tz)
        scores = member_scores(uow, programme_id=pid, at=at, source="database").frame
    at_risk = set(scores.filter(scores["segment"] == "at_risk")["member_id"])
    assert 0 < len(at_risk) < scores.height  # the test can tell them apart
    # when the nightly run of 1 July recomputes the segments and runs the automations
    run_nightly(new_uow, day=JULY_1, programme_id=pid)
    # then the segment holds exactly them, and the win-back automation acted on exactly them
    with new_uow() as uow:
        assert set(segment_member_ids(uow, programme, "at-risk")) == at_risk
        reached = set(
            uow.conn.execute(
                select(automation_runs.c.member_id).where(
                    automation_runs.c.programme_id == pid, automation_runs.c.outcome == "done"
                )
            ).scalars()
        )
    assert reached == at_risk


def test_churn_risk_and_p_alive_segments_follow_the_fitted_model(
    new_uow: NewUow, cafe: Cafe
) -> None:
    pid = cafe.pid
    with new_uow() as uow:
        programme = load_programme(uow, pid)
        at = start_of_day(JULY_1, programme.tz)
        scores = member_scores(uow, programme_id=pid, at=at, source="database").frame
        defs = [segment_def(programme, "slipping"), segment_def(programme, "alive")]
        found = evaluate(uow, programme, defs, at=at)
        # the same answer member by member (the path an automation's audience check takes)
        sample = [cafe.ids[n] for n in ("regular0", "lapsed0", "once0")]
        one_by_one = {
            key: [m for m in sample if member_matches(uow, programme, key, m, at=at)]
            for key in ("slipping", "alive")
        }
    assert one_by_one == {key: [m for m in sample if m in found[key]] for key in found}
    risk = dict(zip(scores["member_id"], scores["churn_risk"], strict=True))
    assert all(r is not None for r in risk.values())  # the models were fitted
    slipping = sorted(m for m, r in risk.items() if r >= 0.5)
    alive = sorted(m for m, r in risk.items() if 1 - r >= 0.9)
    assert found == {"slipping": slipping, "alive": alive}
    # the lapsed member is slipping, the regular is not; one purchase: P(alive) = 1 in BG/NBD
    assert one_by_one["slipping"] == [sample[1]]
    assert sample[2] in one_by_one["alive"]
