"""The audit log: entries commit with the change they record or not at all, and are read back
newest first by actor, member and time, a page at a time — on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from treu.audit.model import AuditAction
from treu.audit.service import list_actions, record_action, record_on_commit
from treu.audit.tables import audit_log
from treu.clock import FixedClock
from treu.errors import InvalidInput, Rejected
from treu.ledger.service import adjust_points, get_balances
from treu.members.enrolment import enrol_member
from treu.members.model import IdentifierKind
from treu.programmes.service import Tenant, apply_programme, create_tenant
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]
DOCUMENT = {"key": "laden", "name": "Laden", "currency": "EUR", "timezone": "Europe/Berlin"}
ANNA, BEN = "staff:stf_anna", "staff:stf_ben"


@pytest.fixture
def programme_id(new_uow: NewUow, tenant: Tenant) -> str:
    with new_uow() as uow:
        return apply_programme(uow, tenant_id=tenant.id, document=DOCUMENT).programme_id


@pytest.fixture
def member_id(new_uow: NewUow, programme_id: str) -> str:
    with new_uow() as uow:
        return enrol_member(
            uow, programme_id=programme_id, identifiers_={IdentifierKind.EMAIL: "a@example.org"}
        ).id


def count(new_uow: NewUow, tenant_id: str) -> int:
    with new_uow() as uow:
        found: int = uow.conn.execute(
            select(func.count()).select_from(audit_log).where(audit_log.c.tenant_id == tenant_id)
        ).scalar_one()
        return found


def test_an_entry_commits_with_the_callers_transaction_and_rolls_back_with_it(
    new_uow: NewUow, tenant: Tenant, programme_id: str, member_id: str
) -> None:
    with new_uow() as uow:
        record_action(
            uow,
            tenant_id=tenant.id,
            programme_id=programme_id,
            actor=ANNA,
            action=AuditAction.MEMBER_BLOCKED,
            subject=member_id,
        )
        # no commit: the entry goes with the transaction
    assert count(new_uow, tenant.id) == 0
    with new_uow() as uow:
        entry_id = record_action(
            uow,
            tenant_id=tenant.id,
            programme_id=programme_id,
            actor=ANNA,
            action=AuditAction.MEMBER_ADJUSTED,
            subject=member_id,
            details={"points": 5, "reason": "Kaffee verschüttet"},
        )
        uow.commit()
    with new_uow() as uow:
        [entry] = list_actions(uow, tenant_id=tenant.id)
    assert entry.id == entry_id
    assert (entry.actor, entry.action, entry.subject) == (ANNA, "member.adjusted", member_id)
    assert entry.details == {"points": 5, "reason": "Kaffee verschüttet"}
    assert entry.programme_id == programme_id


def test_an_entry_on_commit_is_written_only_when_the_service_commits_a_change(
    new_uow: NewUow, tenant: Tenant, member_id: str
) -> None:
    def adjust(points: int, key: str) -> None:
        with new_uow() as uow:
            record_on_commit(
                uow,
                tenant_id=tenant.id,
                actor=ANNA,
                action=AuditAction.MEMBER_ADJUSTED,
                subject=member_id,
                details={"points": points},
            )
            adjust_points(
                uow,
                tenant_id=tenant.id,
                member_id=member_id,
                points=points,
                reason="test",
                actor=ANNA,
                idempotency_key=key,
            )

    adjust(10, "one")
    assert count(new_uow, tenant.id) == 1
    adjust(10, "one")  # the same request again: replayed, no change, no entry
    assert count(new_uow, tenant.id) == 1
    with pytest.raises(Rejected):  # more than the member has: rejected, nothing written
        adjust(-500, "two")
    assert count(new_uow, tenant.id) == 1
    with new_uow() as uow:
        assert get_balances(uow, tenant_id=tenant.id, member_id=member_id).available == 10


def test_the_log_is_read_newest_first_by_actor_member_and_time_a_page_at_a_time(
    new_uow: NewUow, clock: FixedClock, tenant: Tenant, programme_id: str, member_id: str
) -> None:
    start = clock.now()
    written: list[str] = []
    for i in range(7):
        clock.set(start + timedelta(hours=i))
        with new_uow() as uow:
            written.append(
                record_action(
                    uow,
                    tenant_id=tenant.id,
                    programme_id=programme_id,
                    actor=ANNA if i % 2 == 0 else BEN,
                    action=AuditAction.PURCHASE_RECORDED,
                    subject=member_id if i < 5 else "mbr_someone_else",
                    details={"n": i},
                )
            )
            uow.commit()
    with new_uow() as other:  # another tenant's entries never show
        stranger = create_tenant(other, key="stranger")
    with new_uow() as uow:
        record_action(
            uow, tenant_id=stranger.id, actor=ANNA, action="member.blocked", subject=member_id
        )
        uow.commit()

    with new_uow() as uow:
        everything = list_actions(uow, tenant_id=tenant.id)
        first = list_actions(uow, tenant_id=tenant.id, limit=3)
        second = list_actions(uow, tenant_id=tenant.id, limit=3, after=first[-1].id)
        third = list_actions(uow, tenant_id=tenant.id, limit=3, after=second[-1].id)
        oldest = list_actions(uow, tenant_id=tenant.id, newest_first=False, limit=4)
        rest = list_actions(uow, tenant_id=tenant.id, newest_first=False, after=oldest[-1].id)
        anna = list_actions(uow, tenant_id=tenant.id, actor=ANNA)
        member = list_actions(uow, tenant_id=tenant.id, subject=member_id)
        window = list_actions(
            uow,
            tenant_id=tenant.id,
            since=start + timedelta(hours=2),
            until=start + timedelta(hours=4),
        )
    assert [e.id for e in everything] == written[::-1]
    assert [e.id for e in first + second + third] == written[::-1]
    assert len(third) == 1
    assert [e.id for e in oldest + rest] == written
    assert [e.details["n"] for e in anna] == [6, 4, 2, 0]
    assert [e.details["n"] for e in member] == [4, 3, 2, 1, 0]
    assert [e.details["n"] for e in window] == [3, 2]


@pytest.mark.parametrize(
    ("actor", "action", "subject"),
    [
        ("anna", "member.adjusted", "mbr_1"),  # an actor says what it is
        ("staff:stf_1", "adjusted", "mbr_1"),  # an action is a dotted code
        ("staff:stf_1", "Member.Adjusted", "mbr_1"),
        ("staff:stf_1", "member.adjusted", ""),
    ],
)
def test_an_entry_of_unknown_shape_is_refused(
    new_uow: NewUow, tenant: Tenant, actor: str, action: str, subject: str
) -> None:
    with new_uow() as uow, pytest.raises(InvalidInput):
        record_action(uow, tenant_id=tenant.id, actor=actor, action=action, subject=subject)


def test_the_database_refuses_an_actor_it_does_not_know(new_uow: NewUow, tenant: Tenant) -> None:
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    with new_uow() as uow, pytest.raises(IntegrityError, match="actor_known"):
        uow.conn.execute(
            insert(audit_log).values(
                id="aud_x",
                tenant_id=tenant.id,
                actor="someone",
                action="member.blocked",
                subject="mbr_1",
                details={},
                at=uow.now(),
            )
        )
