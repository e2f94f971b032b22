"""The llm_judge service: `uvicorn services.llm_judge.main:app` (env prefix LLM_JUDGE_)."""

import logging

from services.common.app import create_app
from services.llm_judge.scorer import LlmJudgeScorer
from services.llm_judge.settings import LlmJudgeSettings

# httpx logs every judge call at INFO: 64 lines per GRPO batch would drown the service's own log.
logging.getLogger("httpx").setLevel(logging.WARNING)

settings = LlmJudgeSettings()
app = create_app(LlmJudgeScorer(settings), settings)
