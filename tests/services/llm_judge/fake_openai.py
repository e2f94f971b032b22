"""A scriptable OpenAI-compatible chat-completions server, for the judge's tests and benchmark.

Serve `FakeOpenAI().app` with tests.helpers.serve_app and point LLM_JUDGE_BASE_URL at `<url>/v1`.
Replies come from a script (consumed in order) and then from `default`, a Reply or a function of
the request body. Every request is recorded with its headers and arrival time. A reply with `hold`
is sent only once the test sets that event: a slow upstream call without a wall-clock wait.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Reply:
    status: int = 200
    body: dict | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    echo_auth: bool = False  # put the request's Authorization header into the error message
    hold: threading.Event | None = None  # answer only once this is set (or HOLD_GUARD_S passed)


@dataclass
class Seen:
    body: dict
    headers: dict[str, str]
    at: float


def chat(content: str, *, cost: float | None = None, prompt_tokens: int = 40,
         completion_tokens: int = 3, finish_reason: str = "stop", delay_s: float = 0.0) -> Reply:
    """A normal 200 chat completion whose message is `content`."""
    usage: dict = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                   "total_tokens": prompt_tokens + completion_tokens}
    if cost is not None:
        usage["cost"] = cost
    body = {
        "id": "chatcmpl-fake", "object": "chat.completion", "model": "fake-judge",
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content}}],
        "usage": usage,
    }
    return Reply(body=body, delay_s=delay_s)


def http_error(status: int, message: str = "fake upstream error", *,
               retry_after: str | None = None, echo_auth: bool = False) -> Reply:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return Reply(status=status, body={"error": {"code": status, "message": message}},
                 headers=headers, echo_auth=echo_auth)


def error_in_200(message: str = "provider returned error", code: int | str | None = 502) -> Reply:
    """OpenRouter's way of failing inside a 200: an `error` object instead of choices."""
    return Reply(body={"error": {"code": code, "message": message}})


HOLD_GUARD_S = 60.0  # a held reply that nobody releases ends here, so no server thread hangs


def held(reply: Reply, event: threading.Event) -> Reply:
    """`reply`, sent only once `event` is set."""
    return replace(reply, hold=event)


_COMPLETION = re.compile(r"<<<COMPLETION (\w+)>>>\n(.*)\n<<<END COMPLETION \1>>>", re.DOTALL)
_REFERENCE = re.compile(r"<<<REFERENCE (\w+)>>>\n(.*)\n<<<END REFERENCE \1>>>", re.DOTALL)


def user_text(body: dict) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if part.get("type") == "text")
    return content


def graded(body: dict) -> tuple[str, str]:
    """(completion, reference) as the judge prompt carries them."""
    text = user_text(body)
    return _COMPLETION.search(text).group(2), _REFERENCE.search(text).group(2)


def fair_judge(body: dict) -> Reply:
    """Score 1 when the completion's <answer> equals the reference, else 0: a judge with a rule."""
    completion, reference = graded(body)
    answer = re.search(r"<answer>(.*?)</answer>", completion, re.DOTALL)
    right = answer is not None and answer.group(1).strip().lower() == reference.strip().lower()
    return chat("1" if right else "0", cost=0.0001)


class FakeOpenAI:
    def __init__(self, default: Reply | Callable[[dict], Reply] | None = None,
                 latency_s: float = 0.0) -> None:
        self.default = default if default is not None else chat("0.8")
        self.latency_s = latency_s
        self.base_url = ""  # set by whoever serves the app: "<url>/v1"
        self.requests: list[Seen] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._handle, methods=["POST"])])

    @property
    def calls(self) -> int:
        return len(self.requests)

    def script(self, *replies: Reply) -> FakeOpenAI:
        self._script.extend(replies)
        return self

    def reset(self, default: Reply | Callable[[dict], Reply] | None = None) -> None:
        self.default = default if default is not None else chat("0.8")
        self.latency_s = 0.0
        self._script.clear()
        self.requests.clear()
        self.max_in_flight = 0

    def _next(self, body: dict) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return self.default(body) if callable(self.default) else self.default

    async def _handle(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(Seen(body, dict(request.headers), time.monotonic()))
        reply = self._next(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if reply.delay_s + self.latency_s:
                await asyncio.sleep(reply.delay_s + self.latency_s)
            if reply.hold is not None:
                await _released(reply.hold)
        finally:
            self.in_flight -= 1
        payload = reply.body
        if reply.echo_auth and isinstance(payload, dict):
            leaked = request.headers.get("authorization", "")
            payload = {"error": {"code": reply.status, "message": f"bad request from {leaked}"}}
        if isinstance(payload, str):
            return Response(payload, status_code=reply.status, headers=reply.headers,
                            media_type="text/plain")
        return JSONResponse(payload, status_code=reply.status, headers=reply.headers)


async def _released(event: threading.Event) -> None:
    # A threading.Event, as the test sets it from its own thread; polled, so the server's loop
    # keeps answering other requests meanwhile.
    waited = 0.0
    while not event.is_set() and waited < HOLD_GUARD_S:
        await asyncio.sleep(0.005)
        waited += 0.005
