"""The math_equiv service's ASGI app: `uvicorn services.math_equiv.main:app`."""

from services.common.app import create_app
from services.math_equiv.scorer import MathEquivScorer
from services.math_equiv.settings import MathEquivSettings

settings = MathEquivSettings()
app = create_app(MathEquivScorer(settings), settings)
