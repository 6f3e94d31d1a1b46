"""Settings from the environment (``TREU_*``)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TREU_")

    database_url: str = "sqlite:///treu.db"
    # SQLite waits this long for the write lock before giving up (milliseconds).
    sqlite_busy_timeout_ms: int = 30_000
    pool_size: int = 10


def get_settings() -> Settings:
    return Settings()
