"""Helpers of the import and export tests: a programme, CSV files, a run as the CLI does it."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from treu.imports.model import ImportJob, ImportKind, Progress
from treu.imports.reader import inspect_file
from treu.imports.service import open_import, run_import, transactions
from treu.programmes.service import Tenant, apply_programme
from treu.storage.uow import UnitOfWork

NewUow = Callable[[], UnitOfWork]


def document(key: str = "import", per_euro: int = 1) -> dict[str, Any]:
    return {
        "key": key,
        "name": "Import",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "country": "DE",
        "stores": [{"key": "berlin", "name": "Berlin"}],
        "rewards": [
            {"key": "coffee", "name": "Coffee", "kind": "free_product", "sku": "K", "cost": 30}
        ],
        "rules": [
            {
                "key": "base",
                "name": "Points per euro",
                "effect": {"type": "per_amount", "points": per_euro, "per": "1.00"},
            },
            {
                "key": "review",
                "name": "Review",
                "when": {"activity": "action", "action_types": ["review"]},
                "effect": {"type": "fixed", "points": 10},
            },
        ],
    }


def programme(new_uow: NewUow, tenant: Tenant, key: str = "import") -> str:
    with new_uow() as uow:
        return apply_programme(uow, tenant_id=tenant.id, document=document(key)).programme_id


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(
    new_uow: NewUow,
    programme_id: str,
    kind: ImportKind,
    path: Path,
    *,
    batch_size: int = 1_000,
    on_progress: Callable[[Progress], None] | None = None,
) -> ImportJob:
    info = inspect_file(path, kind)
    with new_uow() as uow:
        job = open_import(uow, programme_id=programme_id, kind=kind, file=info, source="test")
    return run_import(
        transactions(new_uow),
        job_id=job.id,
        path=path,
        batch_size=batch_size,
        on_progress=on_progress,
    )


ACTIVITY_HEADER = [
    "type",
    "external_id",
    "member",
    "occurred_at",
    "store",
    "total",
    "lines",
    "purchase_external_id",
    "amount",
    "action_type",
]


def act(
    kind: str,
    external_id: str,
    member: str,
    at: str,
    *,
    store: str = "",
    total: str = "",
    lines: str = "",
    purchase: str = "",
    amount: str = "",
    action: str = "",
) -> list[str]:
    return [kind, external_id, member, at, store, total, lines, purchase, amount, action]
