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
    # OpenRLHF and slime send one request per sample, and a sample holds its place while it waits
    # in the coalescing window: these bound the samples in flight, so they are sized for a rollout.
    max_concurrency: int = Field(
        default=512, ge=1, description="Requests (a sample each from OpenRLHF/slime) combined at once."
    )
    max_queue: int = Field(default=4096, ge=0, description="Requests waiting for a place; then 503.")
