"""Wallet passes from the portal: an Apple Wallet .pkpass whose manifest hashes every file and
whose detached PKCS#7 signature verifies (with a self-signed certificate standing in for
Apple's), and a Google Wallet save link whose JWT verifies with the service account's key."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from playwright.sync_api import Page, expect
from web_support import Cafe, log_in, member_with_history

pytestmark = pytest.mark.browser


def self_signed(tmp: Path, name: str) -> tuple[Path, Path, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, key


def verify_detached(signature: bytes, content: bytes, ca: Path, tmp: Path) -> bool:
    """OpenSSL's own CMS verification of a detached signature over ``content``."""
    (tmp / "signature").write_bytes(signature)
    (tmp / "content").write_bytes(content)
    done = subprocess.run(
        [
            "openssl", "cms", "-verify", "-binary", "-inform", "DER",
            "-in", str(tmp / "signature"), "-content", str(tmp / "content"),
            "-CAfile", str(ca), "-purpose", "any", "-out", "/dev/null",
        ],
        capture_output=True,
        check=False,
    )  # fmt: skip
    return done.returncode == 0


def test_the_apple_wallet_pass_is_signed_over_a_manifest_of_every_file(
    page: Page, cafe: Cafe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key, _ = self_signed(tmp_path, "pass.example.kiezcafe")
    wwdr, _, _ = self_signed(tmp_path, "wwdr")
    monkeypatch.setenv("TREU_PKPASS_CERT", str(cert))
    monkeypatch.setenv("TREU_PKPASS_KEY", str(key))
    monkeypatch.setenv("TREU_PKPASS_WWDR", str(wwdr))
    monkeypatch.setenv("TREU_PKPASS_PASS_TYPE_ID", "pass.example.kiezcafe")
    monkeypatch.setenv("TREU_PKPASS_TEAM_ID", "TEAM123456")
    member_id, email = member_with_history(cafe)
    log_in(page, cafe, member_id, email)

    with page.expect_download() as download:
        page.get_by_role("link", name="Zu Apple Wallet hinzufügen").click()
    archive = zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes()))
    files = {name: archive.read(name) for name in archive.namelist()}
    assert {"pass.json", "icon.png", "manifest.json", "signature"} <= set(files)

    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name]).hexdigest() == digest, name

    assert verify_detached(files["signature"], files["manifest.json"], cert, tmp_path)
    tampered = files["manifest.json"].replace(b'"icon.png"', b'"icon.PNG"')
    assert not verify_detached(files["signature"], tampered, cert, tmp_path)
    carried = pkcs7.load_der_pkcs7_certificates(files["signature"])
    assert {c.subject.rfc4514_string() for c in carried} == {
        "CN=pass.example.kiezcafe",
        "CN=wwdr",
    }

    card = json.loads(files["pass.json"])
    assert card["passTypeIdentifier"] == "pass.example.kiezcafe"
    assert card["teamIdentifier"] == "TEAM123456"
    assert card["serialNumber"] == member_id
    assert card["organizationName"] == "Kiezcafé Treue"
    assert card["storeCard"]["primaryFields"][0] == {
        "key": "points",
        "label": "Punkte",
        "value": 43,
    }
    assert card["barcodes"][0]["format"] == "PKBarcodeFormatQR"
    assert card["barcodes"][0]["message"] == member_id


def test_the_google_wallet_link_carries_a_jwt_signed_with_the_service_account(
    page: Page, cafe: Cafe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, key = self_signed(tmp_path, "service-account")
    account = tmp_path / "service-account.json"
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account.write_text(
        json.dumps({"client_email": "treu@kiezcafe.iam.example", "private_key": pem}),
        encoding="utf-8",
    )
    monkeypatch.setenv("TREU_GOOGLE_WALLET_ISSUER_ID", "3388000000022")
    monkeypatch.setenv("TREU_GOOGLE_WALLET_KEY", str(account))
    member_id, email = member_with_history(cafe)
    log_in(page, cafe, member_id, email)

    link = page.get_by_role("link", name="In Google Wallet speichern")
    expect(link).to_be_visible()
    answer = page.request.get(cafe.base + str(link.get_attribute("href")), max_redirects=0)
    assert answer.status == 303
    location = answer.headers["location"]
    assert location.startswith("https://pay.google.com/gp/v/save/")
    token = location.removeprefix("https://pay.google.com/gp/v/save/")

    claims = jwt.decode(token, key.public_key(), algorithms=["RS256"], audience="google")
    assert claims["iss"] == "treu@kiezcafe.iam.example"
    assert claims["typ"] == "savetowallet"
    (card,) = claims["payload"]["loyaltyObjects"]
    assert card["id"] == f"3388000000022.{member_id}"
    assert card["loyaltyPoints"]["balance"] == {"int": 43}
    assert card["barcode"]["value"] == member_id
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other.public_key(), algorithms=["RS256"], audience="google")


def test_without_wallet_settings_the_portal_offers_no_wallet(page: Page, cafe: Cafe) -> None:
    member_id, email = member_with_history(cafe)
    log_in(page, cafe, member_id, email)
    expect(page.locator("#apple-wallet")).to_have_count(0)
    expect(page.locator("#google-wallet")).to_have_count(0)
    assert page.request.get(cafe.portal + "/wallet/apple.pkpass").status == 404
