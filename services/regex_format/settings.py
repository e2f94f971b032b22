"""Settings of the regex_format service (env prefix REGEX_FORMAT_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings
from services.regex_format.rules import Mode


class RegexFormatSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGEX_FORMAT_", extra="ignore")

    default_mode: Mode = Field(default="think_answer", description="Rule used when a request names none.")
    max_pattern_length: int = Field(default=2048, ge=16, description="Longest user pattern accepted.")
