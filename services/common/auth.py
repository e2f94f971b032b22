"""Optional bearer-token auth on every route except the health probes."""

from __future__ import annotations

import hmac

from proto.models import ErrorType
from services.common.errors import send_error

OPEN_PATHS = frozenset({"/healthz", "/readyz"})


class BearerAuthMiddleware:
    def __init__(self, app, token: str, env_name: str):
        self.app = app
        self._expected = f"Bearer {token}".encode()
        self._env_name = env_name

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers", ())).get(b"authorization", b"")
        # compare_digest keeps the comparison time independent of how much of the token matched.
        if hmac.compare_digest(given, self._expected):
            return await self.app(scope, receive, send)
        await send_error(
            send, ErrorType.unauthorized,
            f"missing or wrong bearer token: send 'Authorization: Bearer <{self._env_name}>'",
            extra_headers=[(b"www-authenticate", b"Bearer")],
        )
