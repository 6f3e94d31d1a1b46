"""Imports every ``tables.py`` so ``metadata`` knows the whole schema (Alembic, tests)."""

from treu.activities import tables as _activities
from treu.auth import tables as _auth
from treu.jobs import tables as _jobs
from treu.ledger import tables as _ledger
from treu.members import tables as _members
from treu.outbox import tables as _outbox
from treu.programmes import tables as _programmes
from treu.rewards import tables as _rewards
from treu.storage.metadata import metadata
from treu.webhooks import tables as _webhooks

__all__ = ["metadata"]
_ = (_activities, _auth, _jobs, _ledger, _members, _outbox, _programmes, _rewards, _webhooks)
