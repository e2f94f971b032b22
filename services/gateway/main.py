"""Gateway ASGI app: `GATEWAY_CONFIG=rewards.yaml uvicorn services.gateway.main:app` (rewardstack gateway).

The config is read when the app starts (the lifespan), so a missing or broken file stops the
process before it listens, with the file and the field named.
"""

from services.gateway.app import create_gateway_app
from services.gateway.settings import GatewaySettings

settings = GatewaySettings()
app = create_gateway_app(None, settings)
