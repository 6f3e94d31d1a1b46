"""Enrolment: a new member, and what the programme gives them for joining."""

from __future__ import annotations

from datetime import date
from typing import Any

from treu.mechanics import service as mechanics
from treu.members.model import Channel, IdentifierKind, Member
from treu.members.service import create_member
from treu.messaging.consent import request_confirmation
from treu.programmes.service import load_programme
from treu.storage.uow import UnitOfWork


def enrol_member(
    uow: UnitOfWork,
    *,
    programme_id: str,
    identifiers_: dict[IdentifierKind, str],
    name: str | None = None,
    birthday: date | None = None,
    locale: str | None = None,
    attributes: dict[str, Any] | None = None,
    consents_: dict[Channel, bool] | None = None,
    source: str = "api",
    referral_code: str | None = None,
    client_address: str | None = None,
) -> Member:
    """Enrol a member: identifiers normalised and unique, accounts opened, consents recorded
    (e-mail consent under double opt-in: the confirmation e-mail queued), then welcome gifts and
    the referral (``referral_code``: the friend's code, if they came with one;
    ``client_address``: where the sign-up came from, for the referral fraud checks)."""
    programme = load_programme(uow, programme_id)
    member = create_member(
        uow,
        programme_id=programme_id,
        identifiers_=identifiers_,
        name=name,
        birthday=birthday,
        locale=locale,
        attributes=attributes,
        consents_=consents_,
        source=source,
    )
    if (consents_ or {}).get(Channel.EMAIL):
        request_confirmation(uow, programme, member.id)
    mechanics.after_enrolment(
        uow,
        programme,
        member.id,
        uow.now(),
        referral_code=referral_code,
        client_address=client_address,
    )
    uow.commit()
    return member
