"""Imports every ``tables.py`` so ``metadata`` knows the whole schema (Alembic, tests)."""

from treu.activities import tables as _activities
from treu.auth import tables as _auth
from treu.campaigns import tables as _campaigns
from treu.donations import tables as _donations
from treu.jobs import tables as _jobs
from treu.ledger import tables as _ledger
from treu.members import tables as _members
from treu.memberships import tables as _memberships
from treu.outbox import tables as _outbox
from treu.programmes import tables as _programmes
from treu.referrals import tables as _referrals
from treu.rewards import tables as _rewards
from treu.stamps import tables as _stamps
from treu.storage.metadata import metadata
from treu.tiers import tables as _tiers
from treu.wallet import tables as _wallet
from treu.webhooks import tables as _webhooks

__all__ = ["metadata"]
_ = (
    _activities,
    _auth,
    _campaigns,
    _donations,
    _jobs,
    _ledger,
    _members,
    _memberships,
    _outbox,
    _programmes,
    _referrals,
    _rewards,
    _stamps,
    _tiers,
    _wallet,
    _webhooks,
)
