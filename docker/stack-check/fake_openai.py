"""A fake OpenAI-compatible judge upstream for scripts/stack_check.sh: standard library only, so it
runs in the services image without the test tree.

POST /v1/chat/completions grades like tests/services/llm_judge/fake_openai.py's fair_judge: "1"
when the completion's <answer> equals the reference (case and spaces aside), else "0". GET
/health answers 200 for the compose healthcheck. Listens on 0.0.0.0:$PORT (default 8000).
"""

from __future__ import annotations

import json
import os
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_COMPLETION = re.compile(r"<<<COMPLETION (\w+)>>>\n(.*)\n<<<END COMPLETION \1>>>", re.DOTALL)
_REFERENCE = re.compile(r"<<<REFERENCE (\w+)>>>\n(.*)\n<<<END REFERENCE \1>>>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def _user_text(body: dict) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if part.get("type") == "text")
    return content


def grade(body: dict) -> str:
    """The judge's reply text: "1" for a right answer, "0" otherwise."""
    text = _user_text(body)
    completion, reference = _COMPLETION.search(text), _REFERENCE.search(text)
    if completion is None or reference is None:
        return "0"
    answer = _ANSWER.search(completion.group(2))
    right = answer is not None and answer.group(1).strip().lower() == reference.group(2).strip().lower()
    return "1" if right else "0"


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": {"code": 404, "message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"code": 404, "message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            content = grade(body)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            self._send(400, {"error": {"code": 400, "message": f"bad request: {exc}"}})
            return
        self._send(200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model", "fake-judge"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 1, "total_tokens": 41},
        })

    def log_message(self, fmt: str, *args) -> None:  # one line per call on stderr, as uvicorn would
        print(f"fake_openai: {self.command} {self.path} {args[1] if len(args) > 1 else ''}", flush=True)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8000"))), Handler).serve_forever()
