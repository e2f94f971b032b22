"""create_gateway_app: the shared service app (auth, limits, probes, metrics, /v1/score) plus the
OpenRLHF and slime routes, with the clients to the reward services opened on the serving loop."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from proto.gateway_config import GatewayConfig
from services.common.app import create_app
from services.gateway.combine import Gateway
from services.gateway.routes import install_routes
from services.gateway.settings import GatewaySettings


def create_gateway_app(config: GatewayConfig | None, settings: GatewaySettings) -> FastAPI:
    """The gateway app; with `config` None it reads `settings.config` when it starts."""
    gateway = Gateway(config, settings.config)
    app = create_app(gateway, settings)
    shared = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI):
        async with shared(a):
            await gateway.start()
            try:
                yield
            finally:
                await gateway.stop()

    app.router.lifespan_context = lifespan
    app.title = "rewardstack gateway"
    install_routes(app, gateway, settings)
    app.state.gateway = gateway
    return app
