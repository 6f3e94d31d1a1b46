"""Metrics and logs for operators: Prometheus metrics, JSON log lines with request ids.

* ``/metrics`` (see :mod:`treu.api.app`) exposes, in the Prometheus text format:

  - ``treu_http_requests_total{method,route,status}`` and
    ``treu_http_request_duration_seconds{method,route}`` — every API request, by route
    template (``/v1/members/{ref}``, never the member's id: bounded label values);
  - ``treu_events_total{type}`` — every domain event committed (``points.earned``,
    ``points.redeemed``, ``voucher.used`` …), counted where it is committed (API, worker, CLI
    and jobs alike): earn and redeem counts come from here;
  - ``treu_job_step_seconds{step}`` — how long each nightly step took;
  - ``treu_outbox_pending{consumer}`` / ``treu_outbox_lag_seconds{consumer}`` — events not yet
    handed to webhook deliveries (and, where the automations consumer exists, to automations),
    and the age of the oldest: read from the database at scrape time, so they are right however
    many processes write.

  With several worker processes (``treu serve --workers N``), set ``PROMETHEUS_MULTIPROC_DIR``
  to an empty directory: every process writes its counters there and a scrape of any of them
  sums all (prometheus_client's multiprocess mode).

* Logs: :func:`configure_logging` (``TREU_LOG_FORMAT=json|text``, ``TREU_LOG_LEVEL``) sets up the
  root logger; in JSON every line is one object with ``time``, ``level``, ``logger``,
  ``message`` and the ``request_id`` of the API request it belongs to (sent by the caller as
  ``X-Request-Id`` or made up, and returned in the response's ``X-Request-Id``).
"""

from __future__ import annotations

import logging
import logging.config
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from treu.ids import new_id
from treu.storage.uow import Event, commit_listeners

REQUEST_ID_HEADER = "X-Request-Id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
request_id: ContextVar[str | None] = ContextVar("treu_request_id", default=None)

HTTP_REQUESTS = Counter(
    "treu_http_requests_total",
    "API requests by route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "treu_http_request_duration_seconds",
    "API request duration by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
EVENTS = Counter("treu_events_total", "Domain events committed, by type", ["type"])
JOB_STEP = Histogram(
    "treu_job_step_seconds",
    "Duration of nightly steps",
    ["step"],
    buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
)


def count_events(events: Sequence[Event]) -> None:
    for event in events:
        EVENTS.labels(event.type).inc()


commit_listeners.append(count_events)


def new_request_id(sent: str | None) -> str:
    """The caller's request id if it is a sane one, else a new one."""
    if sent and _VALID_REQUEST_ID.match(sent):
        return sent
    return new_id("request")


class RequestMetricsMiddleware:
    """Pure ASGI middleware: request id (context variable and response header), request
    metrics by route template, and one access log line per request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log = logging.getLogger("treu.access")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None
        )
        rid = new_request_id(sent)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER.lower().encode(), rid.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_DURATION.labels(method, template).observe(elapsed)
            if self.log.isEnabledFor(logging.INFO):
                self.log.info(
                    "%s %s %s",
                    method,
                    scope.get("path", ""),
                    status,
                    extra={
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id.reset(token)


class OutboxCollector(Collector):
    """Outbox backlog per consumer, read from the database at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from treu.outbox.tables import outbox  # late: only the API process needs it

        pending = GaugeMetricFamily(
            "treu_outbox_pending",
            "Committed events a consumer has not handled yet",
            labels=["consumer"],
        )
        lag = GaugeMetricFamily(
            "treu_outbox_lag_seconds", "Age of the oldest unhandled event", labels=["consumer"]
        )
        consumers = {"webhooks": outbox.c.dispatched_at}
        if "automated_at" in outbox.c:
            consumers["automations"] = outbox.c["automated_at"]
        try:
            with self.engine.connect() as conn:
                for name, column in consumers.items():
                    count, oldest = conn.execute(
                        select(func.count(), func.min(outbox.c.created_at)).where(column.is_(None))
                    ).one()
                    pending.add_metric([name], float(count))
                    age = 0.0
                    if oldest is not None:
                        age = (
                            datetime.now(UTC) - oldest.replace(tzinfo=oldest.tzinfo or UTC)
                        ).total_seconds()
                    lag.add_metric([name], max(age, 0.0))
        except Exception:  # a scrape never fails because the database is away for a moment
            logging.getLogger("treu.metrics").warning("outbox metrics unavailable", exc_info=True)
            return
        yield pending
        yield lag


def metrics_payload(engine: Engine) -> bytes:
    """The Prometheus exposition of this process (or of all, in multiprocess mode)."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in (HTTP_REQUESTS, HTTP_DURATION, EVENTS, JOB_STEP):
            registry.register(collector)
    registry.register(OutboxCollector(engine))
    return generate_latest(registry)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def logging_config(*, fmt: str = "text", level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for Treu and uvicorn: ``json`` or ``text`` lines."""
    formatter: dict[str, Any]
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        }
    else:
        formatter = {"format": "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": _RequestIdFilter}},
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            # uvicorn's own handlers go; its lines reach the root handler in the same format
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},  # ours has the request id
        },
    }


def configure_logging(fmt: str | None = None, level: str | None = None) -> dict[str, Any]:
    from treu.config import get_settings

    settings = get_settings()
    config = logging_config(fmt=fmt or settings.log_format, level=level or settings.log_level)
    logging.config.dictConfig(config)
    return config
