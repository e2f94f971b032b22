"""ASGI entry point: `uvicorn services.regex_format.main:app`."""

from services.common.app import create_app
from services.regex_format.scorer import RegexFormatScorer
from services.regex_format.settings import RegexFormatSettings

settings = RegexFormatSettings()
app = create_app(RegexFormatScorer(settings), settings)
