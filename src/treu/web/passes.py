"""Wallet passes of the member portal: an Apple Wallet ``.pkpass`` and a "Save to Google Wallet"
link.

A wallet pass is static, like a plastic card: it cannot carry the portal's rotating QR token
(valid for a minute). Its barcode is the member's card number (``card:<number>``) when they
have one, else their member id — what the till accepts for a printed card. The portal's own
QR code stays the one a screenshot cannot reuse.

- **Apple**: a zip of ``pass.json``, the images, ``manifest.json`` (the SHA-1 of every file, as
  Apple specifies) and ``signature``: a detached PKCS#7 (CMS) signature of the manifest made
  with the pass type certificate, Apple's WWDR certificate included.
- **Google**: ``https://pay.google.com/gp/v/save/<JWT>``, the JWT signed RS256 with the service
  account's key, carrying one loyalty object.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from treu.config import Settings
from treu.members.model import Member
from treu.programmes.model import Programme

GOOGLE_SAVE = "https://pay.google.com/gp/v/save/"
PKPASS_TYPE = "application/vnd.apple.pkpass"
_GREEN = (11, 93, 75)  # the portal's accent colour


@dataclass(frozen=True)
class CardFace:
    """What the pass shows: the programme, the member, the balance, the barcode."""

    programme: Programme
    member: Member
    points: int
    tier: str | None
    barcode: str
    points_label: str
    member_label: str
    tier_label: str


def offered(settings: Settings) -> dict[str, bool]:
    """Which wallet buttons the portal shows (the files are read only when a pass is made)."""
    return {
        "apple": bool(
            settings.pkpass_cert
            and settings.pkpass_key
            and settings.pkpass_pass_type_id
            and settings.pkpass_team_id
        ),
        "google": bool(settings.google_wallet_issuer_id and settings.google_wallet_key),
    }


def barcode_of(member: Member) -> str:
    card = member.identifiers.get("card")
    return f"card:{card}" if card else member.id


# --- Apple Wallet --------------------------------------------------------------------------


@dataclass(frozen=True)
class AppleSigner:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    pass_type_id: str
    team_id: str
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> AppleSigner | None:
        """The signer the settings describe; None while any of the four required is unset."""
        if not all(
            (
                settings.pkpass_cert,
                settings.pkpass_key,
                settings.pkpass_pass_type_id,
                settings.pkpass_team_id,
            )
        ):
            return None
        certificate = x509.load_pem_x509_certificate(Path(settings.pkpass_cert).read_bytes())
        password = settings.pkpass_key_password.encode() or None
        key = serialization.load_pem_private_key(
            Path(settings.pkpass_key).read_bytes(), password=password
        )
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("TREU_PKPASS_KEY: an RSA or EC private key")
        chain: tuple[x509.Certificate, ...] = ()
        if settings.pkpass_wwdr:
            chain = (x509.load_pem_x509_certificate(Path(settings.pkpass_wwdr).read_bytes()),)
        return cls(certificate, key, settings.pkpass_pass_type_id, settings.pkpass_team_id, chain)


def apple_pass(signer: AppleSigner, face: CardFace) -> bytes:
    """The ``.pkpass`` file (a zip) for ``face``."""
    files = {
        "pass.json": json.dumps(pass_json(signer, face), ensure_ascii=False, indent=2).encode(),
        "icon.png": png(29, 29, _GREEN),
        "icon@2x.png": png(58, 58, _GREEN),
        "logo.png": png(50, 50, _GREEN),
    }
    manifest = json.dumps(
        {name: hashlib.sha1(data).hexdigest() for name, data in files.items()},  # noqa: S324 - Apple's format
        indent=2,
    ).encode()
    builder = pkcs7.PKCS7SignatureBuilder().set_data(manifest)
    builder = builder.add_signer(signer.certificate, signer.key, hashes.SHA256())
    for certificate in signer.chain:
        builder = builder.add_certificate(certificate)
    signature = builder.sign(
        serialization.Encoding.DER,
        [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("manifest.json", manifest)
        z.writestr("signature", signature)
    return out.getvalue()


def pass_json(signer: AppleSigner, face: CardFace) -> dict[str, Any]:
    doc = face.programme.document
    barcode = {
        "format": "PKBarcodeFormatQR",
        "message": face.barcode,
        "messageEncoding": "iso-8859-1",
        "altText": face.barcode,
    }
    fields: dict[str, Any] = {
        "primaryFields": [
            {"key": "points", "label": face.points_label, "value": face.points},
        ],
        "secondaryFields": [
            {"key": "member", "label": face.member_label, "value": face.member.name or ""}
        ],
    }
    if face.tier:
        fields["auxiliaryFields"] = [{"key": "tier", "label": face.tier_label, "value": face.tier}]
    return {
        "formatVersion": 1,
        "passTypeIdentifier": signer.pass_type_id,
        "teamIdentifier": signer.team_id,
        "serialNumber": face.member.id,
        "organizationName": doc.name,
        "description": doc.name,
        "logoText": doc.name,
        "foregroundColor": "rgb(255, 255, 255)",
        "backgroundColor": "rgb({}, {}, {})".format(*_GREEN),
        "labelColor": "rgb(255, 255, 255)",
        "barcodes": [barcode],
        "barcode": barcode,  # iOS before 9 reads only this one
        "storeCard": fields,
    }


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain PNG of one colour (the pass's icon and logo), made here: no image files to ship."""
    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


# --- Google Wallet -------------------------------------------------------------------------


@dataclass(frozen=True)
class GoogleSigner:
    issuer_id: str
    client_email: str
    private_key: str  # PEM

    @classmethod
    def from_settings(cls, settings: Settings) -> GoogleSigner | None:
        if not (settings.google_wallet_issuer_id and settings.google_wallet_key):
            return None
        account = json.loads(Path(settings.google_wallet_key).read_text(encoding="utf-8"))
        return cls(
            settings.google_wallet_issuer_id, account["client_email"], account["private_key"]
        )


def google_save_link(signer: GoogleSigner, face: CardFace, *, now: datetime, origin: str) -> str:
    doc = face.programme.document
    prefix = f"{signer.issuer_id}."
    loyalty_object: dict[str, Any] = {
        "id": prefix + face.member.id,
        "classId": prefix + _google_id(f"{face.programme.tenant_id}-{doc.key}"),
        "state": "ACTIVE",
        "accountId": face.member.id,
        "accountName": face.member.name or face.member.id,
        "loyaltyPoints": {"label": face.points_label, "balance": {"int": face.points}},
        "barcode": {"type": "QR_CODE", "value": face.barcode, "alternateText": face.barcode},
    }
    if face.tier:
        loyalty_object["secondaryLoyaltyPoints"] = {
            "label": face.tier_label,
            "balance": {"string": face.tier},
        }
    claims = {
        "iss": signer.client_email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(now.timestamp()),
        "origins": [origin],
        "payload": {"loyaltyObjects": [loyalty_object]},
    }
    token = jwt.encode(claims, signer.private_key, algorithm="RS256")
    return GOOGLE_SAVE + token


def _google_id(text: str) -> str:
    """Google's ids allow letters, digits, ``.``, ``_`` and ``-``."""
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text)
