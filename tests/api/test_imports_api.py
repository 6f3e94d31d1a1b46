"""Import as a background job over HTTP, its error report, and streamed exports."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import Tenant


@pytest.fixture(autouse=True)
def import_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TREU_IMPORT_DIR", str(tmp_path / "uploads"))
    return tmp_path / "uploads"


def upload(shop: Tenant, kind: str, body: str, who: str = "admin", **params: str) -> Any:
    return shop.client.post(
        "/v1/imports",
        params={"programme": shop.programme, "kind": kind, **params},
        content=body.encode(),
        headers=shop.headers(who, **{"Content-Type": "text/csv"}),
    )


def finished(shop: Tenant, job_id: str) -> dict[str, Any]:
    """The job once its background run is done (or has stopped)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, Any] = shop.get(f"/v1/imports/{job_id}").json()
        if job["status"] != "running":
            return job
        time.sleep(0.05)
    raise AssertionError(f"import {job_id} still running: {job}")


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


MEMBERS = (
    "email,name,points,points_expire_at\r\n"
    "mia@example.org,Mia,40,2026-12-31\r\n"
    "bo@example.org,Bo,,\r\n"
    "nope,X,,\r\n"
)


def test_an_uploaded_file_is_imported_in_the_background_and_reports_its_bad_rows(
    shop: Tenant, import_dir: Path
) -> None:
    # when an admin uploads a members file
    created = upload(shop, "members", MEMBERS, file_name="kunden.csv")
    assert created.status_code == 202, created.text
    job = created.json()
    assert (job["kind"], job["file_name"], job["file_size"]) == (
        "members",
        "kunden.csv",
        len(MEMBERS),
    )
    # then the job runs to the end in the background
    done = finished(shop, job["id"])
    assert (done["status"], done["rows_done"], done["rows_ok"], done["rows_failed"]) == (
        "done",
        3,
        2,
        1,
    )
    assert done["progress"] == 1.0
    assert list(import_dir.iterdir()) == []  # the upload is gone once its job is done
    # and its error report is CSV
    report = shop.get(f"/v1/imports/{job['id']}/errors")
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    [row] = csv_rows(report.text)
    assert (row["line"], row["column"]) == ("4", "email")
    assert row["reason"].startswith("invalid_identifier:")
    # the same file again is the same job, and changes nothing
    again = upload(shop, "members", MEMBERS)
    assert again.status_code == 202
    assert (again.json()["id"], again.json()["status"]) == (job["id"], "done")
    lookup = shop.get(
        f"/v1/programmes/{shop.programme}/members/lookup",
        params={"identifier": "email:mia@example.org"},
    ).json()
    balances = shop.get(f"/v1/members/{lookup['id']}/balances").json()
    assert balances["available"] == 40


def test_activities_upload_and_exports_stream_as_csv_and_json_lines(shop: Tenant) -> None:
    finished(shop, upload(shop, "members", "email\r\nana@example.org\r\n").json()["id"])
    purchases = (
        "external_id,member,occurred_at,store,total\r\n"
        "a-1,email:ana@example.org,2025-11-02T10:00:00+01:00,kastanienallee,23.40\r\n"
        "a-2,email:ana@example.org,2025-11-03T10:00:00+01:00,,7.00\r\n"
    )
    job = finished(shop, upload(shop, "activities", purchases).json()["id"])
    assert (job["rows_ok"], job["rows_failed"]) == (2, 0)
    exported = shop.get("/v1/exports/activities", params={"programme": shop.programme})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert [(r["external_id"], r["amount"], r["points"]) for r in csv_rows(exported.text)] == [
        ("a-1", "23.40", "23"),
        ("a-2", "7.00", "7"),
    ]
    lines = shop.get(
        "/v1/exports/balances", params={"programme": shop.programme, "format": "jsonl"}
    )
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line)["available"] for line in lines.text.splitlines()] == [30]


def test_only_who_may_import_and_export_can_and_only_their_own(
    shop: Tenant, new_tenant: Callable[[], Tenant]
) -> None:
    job = upload(shop, "members", "email\r\ncem@example.org\r\n").json()
    finished(shop, job["id"])
    for who in ("integration", "read", "pos"):
        assert upload(shop, "members", "email\r\nx@example.org\r\n", who=who).status_code == 403
        assert shop.get(f"/v1/imports/{job['id']}", who=who).status_code == 403
        exported = shop.get("/v1/exports/members", who=who, params={"programme": shop.programme})
        assert exported.status_code == 403
    other = new_tenant()
    assert other.get(f"/v1/imports/{job['id']}").json()["code"] == "import_not_found"
    assert other.get(f"/v1/imports/{job['id']}/errors").status_code == 404
    assert other.get("/v1/exports/members", params={"programme": shop.programme}).status_code == (
        404
    )


def test_a_file_the_import_cannot_use_is_refused_at_once(shop: Tenant, import_dir: Path) -> None:
    refused = upload(shop, "members", "emial,name\r\nx@example.org,X\r\n")
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_import_file"
    assert list(import_dir.iterdir()) == []
    missing = shop.client.post(
        "/v1/imports",
        params={"programme": "no-such-programme", "kind": "members"},
        content=b"email\r\n",
        headers=shop.headers(**{"Content-Type": "text/csv"}),
    )
    assert missing.json()["code"] == "programme_not_found"
