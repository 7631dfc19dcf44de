"""Process settings: where the config is, where to listen, how loud to log.

Read from `VARIANT_PROXY_*` environment variables (and a `.env` file if
present); CLI flags override them. Routing lives in the YAML config, not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VARIANT_PROXY_", env_file=".env", extra="ignore", frozen=True
    )

    config: Path = Path("config/router.yaml")
    host: str = "127.0.0.1"
    port: int = Field(8780, ge=0, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    allow_remote: bool = False
    workers: int = Field(1, ge=1)
    access_log: bool = False
    upstream_client: Literal["native", "httpx"] = "native"
