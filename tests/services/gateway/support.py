"""What the gateway's tests share: real reward services wrapped to record the /v1/score bodies they
received, and scripted stand-ins whose coalescers answer at once with a set outcome."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator

from prometheus_client import CollectorRegistry

from proto.gateway_config import GatewayConfig
from proto.models import ItemDetail, ItemStatus, ScoreItem
from services.gateway.combine import Combined, Gateway
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


class Scripted:
    """Stands in for a gateway service: its coalescer answers every submit with `outcome`."""

    def __init__(self, entry, outcome):
        self.entry, self.outcome, self.coalescer, self.not_ready = entry, outcome, self, None

    def submit(self, items, images):
        future = asyncio.get_running_loop().create_future()
        if isinstance(self.outcome, BaseException):
            future.set_exception(self.outcome)
        else:
            future.set_result(self.outcome(items))
        return future


def answers(*rewards, reason=None, parts=None):
    """An outcome giving these rewards, null ones `unscorable` with `reason`."""
    def outcome(items):
        assert len(items) == len(rewards)
        details = [ItemDetail(parts=parts or {}) if r is not None
                   else ItemDetail(status=ItemStatus.unscorable, reason=reason) for r in rewards]
        return list(rewards), details
    return outcome


def scripted_gateway(outcomes: dict, weights: dict | None = None, on_error: dict | None = None) -> Gateway:
    entries = [{"name": n, "url": f"http://{n}.invalid", "weight": (weights or {}).get(n, 1.0),
                "on_error": (on_error or {}).get(n, "skip")} for n in outcomes]
    gw = Gateway(GatewayConfig(rewards=entries))
    gw.registry = CollectorRegistry()  # kept for `sample`
    gw.register_metrics(gw.registry)
    gw.load()
    gw._services = {e.name: Scripted(e, outcomes[e.name]) for e in gw.entries}
    return gw


def items(n: int) -> list[ScoreItem]:
    return [ScoreItem(completion=str(i)) for i in range(n)]


def combine(gw: Gateway, n: int) -> list[Combined]:
    return asyncio.run(gw.combine(items(n), {}))


def sample(gw: Gateway, name: str, **labels) -> float | None:
    return gw.registry.get_sample_value(name, labels)
