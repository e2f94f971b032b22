"""Known-answer requests for scripts/stack_check.sh: standard library only, run by the host's python3.

    probe.py score SERVICE URL     # POST URL/v1/score with SERVICE's request; check the rewards
    probe.py gateway URL           # the gateway's /v1/score and /openrlhf/get_reward, by shape
    probe.py offline URL CACHE     # clip_cider without weights or hub: /readyz 503 and the fixes
    probe.py free-port             # a free TCP port on 127.0.0.1

Prints one line (what came back, or why not) and exits 0 when the answer is the expected one,
1 otherwise. tests/deploy/test_stack_check.py sends the same requests to the services in-process.
"""

from __future__ import annotations

import base64
import json
import math
import random
import socket
import struct
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable


def png(width: int = 32, height: int = 32, seed: int = 0) -> bytes:
    """A small RGB PNG of seeded noise, so clip_cider embeds a real decoded image."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(width * 3)) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def _exact(expected: list[float]) -> Callable[[dict], str | None]:
    def check(body: dict) -> str | None:
        got = body.get("rewards")
        return None if got == expected else f"expected rewards {expected}, got {got}"
    return check


def _clip_check(body: dict) -> str | None:
    rewards, details = body.get("rewards") or [], body.get("details") or []
    if len(rewards) != 2 or not all(isinstance(r, (int, float)) and math.isfinite(r) for r in rewards):
        return f"expected two finite rewards, got {rewards}"
    if [d.get("status") for d in details] != ["ok", "ok"]:
        return f"expected status ok twice, got {details}"
    return None


_QUESTION = "What is the capital of France?"

# service -> (request body, check of the response body: None when right, else why not)
REQUESTS: dict[str, tuple[dict, Callable[[dict], str | None]]] = {
    "regex_format": ({
        "items": [{"completion": "<think>add</think><answer>4</answer>"}, {"completion": "4, no tags"}],
        "params": {"mode": "tags", "tags": ["think", "answer"]},
    }, _exact([1.0, 0.0])),
    "math_equiv": ({
        "items": [{"completion": "<answer>\\frac{1}{2}</answer>", "reference": "0.5"},
                  {"completion": "<answer>3</answer>", "reference": "0.5"}],
        "params": {"answer_tag": "answer"},
    }, _exact([1.0, 0.0])),
    "vqa_accuracy": ({
        "items": [{"completion": "<answer>two</answer>", "reference": ["two", "2"]},
                  {"completion": "<answer>three</answer>", "reference": ["two", "2"]}],
        "params": {"mode": "exact", "answer_tag": "answer"},
    }, _exact([1.0, 0.0])),
    "clip_cider": ({
        "items": [{"completion": "a square of coloured noise", "image_id": "noise"},
                  {"completion": "a dog on a beach", "image_id": "noise"}],
        "images": {"noise": {"b64": base64.b64encode(png()).decode()}},
    }, _clip_check),
    # The stack check's fake upstream grades 1 for a right <answer>, 0 otherwise.
    "llm_judge": ({
        "items": [{"completion": "<answer>Paris</answer>", "reference": "Paris", "prompt": _QUESTION},
                  {"completion": "<answer>Rome</answer>", "reference": "Paris", "prompt": _QUESTION}],
    }, _exact([1.0, 0.0])),
}


def post(url: str, body: dict, timeout: float = 120.0) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"error": text[:300]}


def get(url: str, timeout: float = 30.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def score(service: str, url: str) -> str | None:
    body, check = REQUESTS[service]
    status, answer = post(f"{url.rstrip('/')}/v1/score", body)
    if status != 200:
        return f"HTTP {status}: {json.dumps(answer)[:300]}"
    why = check(answer)
    note = ""
    if why is None and service == "clip_cider":
        # The stack check starts clip_cider with an empty CLIP_CIDER_CLIP_PRETRAINED: the service
        # must say it runs on random weights, or the empty value did not reach it.
        clip = get(f"{url.rstrip('/')}/v1/info").get("config", {}).get("clip", {})
        note = f", clip {clip.get('model')} random_init={clip.get('random_init')}"
        if clip.get("random_init") is not True:
            why = f"expected random CLIP weights (empty CLIP_CIDER_CLIP_PRETRAINED), /v1/info says {clip}"
    if why is None:
        print(f"rewards {answer['rewards']} from {answer.get('service')} {answer.get('version')}{note}")
    return why


def gateway(url: str) -> str | None:
    """The gateway's combined reward through both of its generic routes: shapes, not values (what
    it combines depends on its config)."""
    base = url.rstrip("/")
    item = {"completion": "<answer>4</answer>", "reference": "4"}
    status, answer = post(f"{base}/v1/score", {"items": [item]})
    if status != 200 or len(answer.get("rewards") or []) != 1:
        return f"/v1/score: HTTP {status}: {json.dumps(answer)[:300]}"
    query = "What is 2+2? <think>2+2</think><answer>4</answer>"
    status2, answer2 = post(f"{base}/openrlhf/get_reward",
                            {"query": [query], "prompts": ["What is 2+2? "], "labels": ["4"]})
    rewards = answer2.get("rewards") if status2 == 200 else None
    if not (isinstance(rewards, list) and len(rewards) == 1 and isinstance(rewards[0], (int, float))):
        return f"/openrlhf/get_reward: HTTP {status2}: {json.dumps(answer2)[:300]}"
    print(f"/v1/score rewards {answer['rewards']}; /openrlhf/get_reward rewards {rewards}")
    return None


# What a clip_cider that has neither its weights nor a hub must say: the tag, then the three fixes.
OFFLINE_NEEDLES = ("ViT-B-32/openai", "services.clip_cider.weights fetch", "HF_ENDPOINT",
                   "CLIP_CIDER_CLIP_PRETRAINED")


def offline(url: str, cache: str, wait_s: float = 180.0) -> str | None:
    """Poll /readyz until it is 503 with the no-weights reason (naming `cache` too), or say why not."""
    deadline, seen = time.monotonic() + wait_s, "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/readyz", timeout=5) as resp:
                return f"/readyz is {resp.status}: ready without weights or hub"
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            seen = f"HTTP {exc.code}: {text[:400]}"
            if exc.code == 503 and all(n in text for n in (*OFFLINE_NEEDLES, cache)):
                print(json.loads(text)["error"]["message"])
                return None
        except OSError as exc:  # not listening yet
            seen = f"{type(exc).__name__}: {exc}"
        time.sleep(1)
    return f"no offline reason on /readyz within {wait_s:.0f} s; last: {seen}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["free-port"]:
            print(free_port())
            return 0
        if argv[:1] == ["score"] and len(argv) == 3 and argv[1] in REQUESTS:
            why = score(argv[1], argv[2])
        elif argv[:1] == ["gateway"] and len(argv) == 2:
            why = gateway(argv[1])
        elif argv[:1] == ["offline"] and len(argv) == 3:
            why = offline(argv[1], argv[2])
        else:
            services = ",".join(REQUESTS)
            print(f"usage: probe.py score {{{services}}} URL | gateway URL | offline URL CACHE | free-port",
                  file=sys.stderr)
            return 2
    except (OSError, ValueError) as exc:  # connection refused, reset, timeout, a non-JSON body
        why = f"{type(exc).__name__}: {exc}"
    if why is not None:
        print(why)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
