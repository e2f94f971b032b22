"""Gateway ASGI app: `GATEWAY_CONFIG=rewards.yaml uvicorn services.gateway.main:app` (rewardstack gateway)."""

from services.gateway.app import create_gateway_app
from services.gateway.config import GatewayConfigError, load_config
from services.gateway.settings import GatewaySettings

settings = GatewaySettings()
if settings.config is None:
    raise GatewayConfigError(
        "GATEWAY_CONFIG is not set: point it at a rewards YAML (see examples/gateway.yaml)"
    )
app = create_gateway_app(load_config(settings.config), settings)
