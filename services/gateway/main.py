"""Gateway ASGI app: `GATEWAY_CONFIG=rewards.yaml uvicorn services.gateway.main:app` (rewardstack gateway)."""

import sys

from services.gateway.app import create_gateway_app
from services.gateway.config import GatewayConfigError, load_config
from services.gateway.settings import GatewaySettings

settings = GatewaySettings()
try:
    if settings.config is None:
        raise GatewayConfigError("GATEWAY_CONFIG is not set: point it at a rewards YAML")
    app = create_gateway_app(load_config(settings.config), settings)
except (GatewayConfigError, ValueError) as exc:
    # A config mistake is one message and exit 2, not an import traceback from uvicorn.
    sys.stderr.write(f"error: {exc}\n")
    raise SystemExit(2) from None
