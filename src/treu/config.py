"""Settings from the environment (``TREU_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TREU_")

    database_url: str = "sqlite:///treu.db"
    # SQLite waits this long for the write lock before giving up (milliseconds).
    sqlite_busy_timeout_ms: int = 30_000
    pool_size: int = 10
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
    member_token_minutes: int = Field(default=30, ge=15, le=60)
    # Webhooks go to public addresses only (no loopback, private, link-local: no SSRF into the
    # network Treu runs in); true allows a receiver on the same machine or network.
    webhook_allow_private: bool = False


def get_settings() -> Settings:
    return Settings()
