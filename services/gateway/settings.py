"""Settings of the gateway service (env prefix GATEWAY_): where its config is, plus the shared limits."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", env_ignore_empty=True)

    config: Path | None = Field(
        default=None, description="The rewards YAML (`rewardstack gateway --config`)."
    )
    max_batch: int = Field(
        default=4096, ge=1, description="Most items in one /v1/score request to the gateway."
    )
    max_concurrency: int = Field(default=64, ge=1, description="/v1/score requests combined at once.")
    max_queue: int = Field(default=1024, ge=0)
