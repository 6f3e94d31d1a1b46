"""Treu: an open-source loyalty platform.

The public surface is the service functions of each domain package (``treu.members.service``,
``treu.activities.service``, ``treu.ledger.service``, ``treu.rewards.service``, ...), the CLI
(``treu``) and, later, the HTTP API. Everything else is private by convention.
"""

__version__ = "0.1.0"
