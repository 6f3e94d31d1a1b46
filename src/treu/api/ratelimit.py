"""Rate limits on the flows worth guessing at: voucher validate/consume, member look-up by
identifier, POS scan; and the log-ins (member codes, staff passwords), which have no key yet:
they count per member identifier or e-mail tried and per client address.

Each request of such a flow counts against two moving windows: its API key's and its client
address's (so neither a leaked key used from many places nor many keys used from one place
gets far). Over either limit: ``429 rate_limited`` with ``Retry-After`` in seconds.

The windows live where ``TREU_RATE_LIMIT_STORAGE`` says (the ``limits`` library's storage URIs):
``memory://`` by default, which counts per process — with ``treu serve --workers N`` each worker
counts on its own, so the effective limit is up to N times the configured one. Point it at a
shared store (``redis://…``, with its client installed) to count once across workers.
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from treu.api.deps import current_principal
from treu.auth.model import Principal
from treu.config import Settings


class RateLimiter:
    def __init__(
        self,
        *,
        per_key: str,
        per_address: str,
        per_login: str = "10/minute",
        storage: str = "memory://",
    ) -> None:
        self.per_key: RateLimitItem = parse(per_key)
        self.per_address: RateLimitItem = parse(per_address)
        self.per_login: RateLimitItem = parse(per_login)
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage))

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(
            per_key=settings.rate_limit_per_key,
            per_address=settings.rate_limit_per_address,
            per_login=settings.rate_limit_per_login,
            storage=settings.rate_limit_storage,
        )

    def check(self, flow: str, *, key_id: str, address: str) -> None:
        """Count one request of ``flow``; raise 429 if a window is full."""
        self._hit(flow, (self.per_key, f"key:{key_id}"), (self.per_address, f"ip:{address}"))

    def check_login(self, flow: str, *, subject: str, address: str) -> None:
        """Count one log-in attempt at ``subject`` (an identifier or e-mail, as sent)."""
        subject = subject.strip().lower()
        self._hit(flow, (self.per_login, f"login:{subject}"), (self.per_address, f"ip:{address}"))

    def _hit(self, flow: str, *windows: tuple[RateLimitItem, str]) -> None:
        for item, who in windows:
            if not self._limiter.hit(item, flow, who):
                reset = self._limiter.get_window_stats(item, flow, who).reset_time
                wait = max(1, math.ceil(reset - time.time()))
                raise HTTPException(
                    429,
                    f"too many {flow} requests ({item}); retry in {wait} s",
                    headers={"Retry-After": str(wait)},
                )


class _Limited:
    def __init__(self, flow: str) -> None:
        self.flow = flow

    def __call__(
        self, request: Request, who: Annotated[Principal, Depends(current_principal)]
    ) -> None:
        limiter: RateLimiter = request.app.state.rate_limiter
        limiter.check(self.flow, key_id=who.key_id, address=_address(request))


def check_login(request: Request, flow: str, subject: str) -> None:
    """For a public route, once it has its body: ``check_login(request, "member_codes", …)``."""
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.check_login(flow, subject=subject, address=_address(request))


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_limited(flow: str) -> Any:
    """A route dependency: ``dependencies=[needs(P.X), rate_limited("vouchers")]``."""
    return Depends(_Limited(flow))
