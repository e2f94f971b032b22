"""TRL's reward-function columns -> ScoreItems: now `integrations.trl_items`, re-exported here."""

from integrations.trl_items import (
    DEFAULT_REFERENCE_COLUMNS,
    build_items,
    flatten_completion,
    message_text,
    prompt_question,
)

__all__ = [
    "DEFAULT_REFERENCE_COLUMNS", "build_items", "flatten_completion", "message_text", "prompt_question",
]
