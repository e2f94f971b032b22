"""ASGI entry point of the clip_cider service: `uvicorn services.clip_cider.main:app`."""

from services.clip_cider.scorer import ClipCiderScorer
from services.clip_cider.settings import ClipCiderSettings
from services.common.app import create_app

settings = ClipCiderSettings()
app = create_app(ClipCiderScorer(settings), settings)
