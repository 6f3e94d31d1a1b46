"""Imports every ``tables.py`` so ``metadata`` knows the whole schema (Alembic, tests)."""

from treu.activities import tables as _activities
from treu.audit import tables as _audit
from treu.auth import tables as _auth
from treu.automations import tables as _automations
from treu.campaigns import tables as _campaigns
from treu.donations import tables as _donations
from treu.imports import tables as _imports
from treu.jobs import tables as _jobs
from treu.ledger import tables as _ledger
from treu.members import tables as _members
from treu.memberships import tables as _memberships
from treu.messaging import tables as _messaging
from treu.outbox import tables as _outbox
from treu.programmes import tables as _programmes
from treu.referrals import tables as _referrals
from treu.rewards import tables as _rewards
from treu.segments import tables as _segments
from treu.shops import tables as _shops
from treu.stamps import tables as _stamps
from treu.storage.metadata import metadata
from treu.tiers import tables as _tiers
from treu.wallet import tables as _wallet
from treu.webhooks import tables as _webhooks

__all__ = ["metadata"]
_ = (
    _activities,
    _audit,
    _auth,
    _automations,
    _campaigns,
    _donations,
    _imports,
    _jobs,
    _ledger,
    _members,
    _memberships,
    _messaging,
    _outbox,
    _programmes,
    _referrals,
    _rewards,
    _segments,
    _shops,
    _stamps,
    _tiers,
    _wallet,
    _webhooks,
)
