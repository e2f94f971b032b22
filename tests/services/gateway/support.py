"""Real reward services behind a gateway, each wrapped to record the /v1/score bodies it received."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from tests.helpers import serve_app


class Recorder:
    """ASGI wrapper: the service is the real app; the wrapper only keeps a copy of each score body."""

    def __init__(self, app):
        self.app = app
        self.bodies: list[dict] = []

    @property
    def calls(self) -> int:
        return len(self.bodies)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/v1/score":
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []

        async def recording_receive():
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    self.bodies.append(json.loads(b"".join(chunks)))
            return message

        return await self.app(scope, recording_receive, send)


@contextlib.contextmanager
def services(**settings) -> Iterator[dict[str, tuple[str, Recorder]]]:
    """regex_format and vqa_accuracy over real HTTP: {name: (url, recorder)}."""
    from services.common.app import create_app
    from services.regex_format.scorer import RegexFormatScorer
    from services.regex_format.settings import RegexFormatSettings
    from services.vqa_accuracy.scorer import VqaAccuracyScorer
    from services.vqa_accuracy.settings import VqaAccuracySettings

    rs, vs = RegexFormatSettings(**settings), VqaAccuracySettings(**settings)
    fmt = Recorder(create_app(RegexFormatScorer(rs), rs))
    ans = Recorder(create_app(VqaAccuracyScorer(vs), vs))
    with serve_app(fmt) as fmt_url, serve_app(ans) as ans_url:
        yield {"format": (fmt_url, fmt), "answer": (ans_url, ans)}


def rewards(svc: dict, **overrides) -> list[dict]:
    """The two entries the tests use: format (weight 0.5) and an exact answer inside <answer>."""
    entries = [
        {"name": "format", "url": svc["format"][0], "weight": 0.5, "params": {"mode": "think_answer"}},
        {"name": "answer", "url": svc["answer"][0], "params": {"mode": "exact", "answer_tag": "answer"}},
    ]
    for e in entries:
        e.update(overrides.get(e["name"], {}))
    return entries


@contextlib.contextmanager
def gateway(entries: list[dict], **config) -> Iterator[tuple[str, object]]:
    """A gateway over `entries`; yields (URL, its Gateway object)."""
    from proto.gateway_config import GatewayConfig
    from services.gateway.app import create_gateway_app
    from services.gateway.settings import GatewaySettings

    settings = GatewaySettings(**config.pop("settings", {}))
    app = create_gateway_app(GatewayConfig(rewards=entries, **config), settings)
    with serve_app(app) as url:
        yield url, app.state.gateway
