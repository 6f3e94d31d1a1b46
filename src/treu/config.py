"""Settings from the environment (``TREU_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TREU_")

    database_url: str = "sqlite:///treu.db"
    # SQLite waits this long for the write lock before giving up (milliseconds).
    sqlite_busy_timeout_ms: int = 30_000
    # PostgreSQL connections per process: pool_size kept open, up to pool_max_overflow more
    # opened for a burst (and closed after it); a request that finds all of them busy waits up to
    # pool_timeout seconds for one. Every process (each `treu serve` worker, each `treu worker`)
    # has a pool of its own: the sum must stay below the server's max_connections
    # (docs/deployment.md, "Connections"). SQLite: connections are cheap and one writes at a time.
    pool_size: int = Field(default=8, ge=1)
    pool_max_overflow: int = Field(default=4, ge=0)
    pool_timeout: float = Field(default=30.0, gt=0)
    # Rate limits of the sensitive API flows (see treu.api.ratelimit), per API key and per
    # client address, in the `limits` notation; the storage is per process unless shared.
    rate_limit_per_key: str = "120/minute"
    rate_limit_per_address: str = "300/minute"
    rate_limit_storage: str = "memory://"
    # Member login (code requests and exchanges) per member identifier or staff e-mail tried.
    rate_limit_per_login: str = "10/minute"
    # Mixed into the keys that sign member tokens, staff sessions and member QR tokens, on top
    # of each tenant's own secret: set it, and a copy of the database alone cannot forge them.
    # Changing it ends every member and staff session at once.
    token_secret: str = ""
    # Logs (treu.observability): "text" for people, "json" (one object a line, with the request
    # id) for log collectors; and the root level.
    log_format: str = Field(default="text", pattern="^(text|json)$")
    log_level: str = "INFO"
    # /metrics answers only with `Authorization: Bearer <metrics_token>` when set.
    metrics_token: str = ""
    member_token_minutes: int = Field(default=30, ge=15, le=60)
    # Webhooks go to public addresses only (no loopback, private, link-local: no SSRF into the
    # network Treu runs in); true allows a receiver on the same machine or network.
    webhook_allow_private: bool = False
    # Wallet passes of the member portal (docs/web.md). Apple: the pass type certificate and its
    # private key (PEM files, the key perhaps encrypted with pkpass_key_password), the pass type
    # id and team id of the developer account, and Apple's WWDR intermediate certificate (PEM)
    # that wallets expect in the signature. Google: the issuer id and the service account's
    # JSON key file. Unset: the portal offers no such button.
    pkpass_cert: str = ""
    pkpass_key: str = ""
    pkpass_key_password: str = ""
    pkpass_pass_type_id: str = ""
    pkpass_team_id: str = ""
    pkpass_wwdr: str = ""
    google_wallet_issuer_id: str = ""
    google_wallet_key: str = ""
    # Where the API keeps uploaded import files while their job runs (deleted when it is
    # done); empty: "treu-imports" in the system's temporary directory.
    import_dir: str = ""
    # The columnar analytics store (docs/analytics.md): the nightly run writes each programme's
    # facts as Parquet under this directory after its other steps, and KPIs, cohorts and scores
    # count from it while it is as fresh as the last nightly run. Empty: no store, KPIs read
    # the database.
    analytics_dir: str = ""
    # Messaging (docs/messaging.md). Where Treu is reached from the outside: the links in
    # messages (unsubscribe, confirm a double opt-in) point here.
    public_url: str = "http://127.0.0.1:8000"
    # E-mail over SMTP: STARTTLS on 587, implicit TLS ("SMTPS") on 465 with smtp_ssl=true.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout: float = 30.0
    smtp_from: str = "treu@localhost"  # the programme's messaging.from_email wins
    # SMS: "generic" POSTs JSON {to, text, sender, message_id} to sms_url (with sms_token as a
    # bearer token); "twilio" uses the Twilio Messages API (sms_account/sms_token, sms_sender or
    # the programme's messaging.sms_sender as From); "" sends no SMS (they wait, then fail).
    sms_provider: str = ""
    sms_url: str = ""
    sms_account: str = ""
    sms_token: str = ""
    sms_sender: str = ""
    twilio_base_url: str = "https://api.twilio.com"
    # Push: POSTs JSON {to: [device tokens], title, body, message_id} to push_url (bearer
    # push_token); "" sends no push messages.
    push_url: str = ""
    push_token: str = ""
    # `treu serve` runs the worker (automations, messages, webhooks: treu.worker) in a thread of
    # the API process. Unset: on for SQLite (the embedded default needs no second process), off
    # for PostgreSQL (run `treu worker` processes instead).
    inprocess_worker: bool | None = None


def get_settings() -> Settings:
    return Settings()
