"""ASGI entry point of the vqa_accuracy service: `uvicorn services.vqa_accuracy.main:app`."""

from services.common.app import create_app
from services.vqa_accuracy.scorer import VqaAccuracyScorer
from services.vqa_accuracy.settings import VqaAccuracySettings

settings = VqaAccuracySettings()
app = create_app(VqaAccuracyScorer(settings), settings)
