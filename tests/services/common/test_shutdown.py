"""SIGTERM on a real uvicorn process: readiness drops, requests in flight all finish, then it exits."""

import asyncio
import signal
import time

import httpx

from tests.helpers import service_process


def test_sigterm_drains_without_losing_requests():
    env = {"TOY_APP": "1", "TOY_MAX_CONCURRENCY": "8"}
    with service_process("tests.services.common.toy:app", env) as (url, proc):
        async def run():
            async with httpx.AsyncClient(timeout=30) as client:
                body = {"items": [{"completion": "sleep:1.5"}, {"completion": "len:abc"}]}
                inflight = [asyncio.create_task(client.post(f"{url}/v1/score", json=body)) for _ in range(6)]
                await asyncio.sleep(0.5)  # all six are being scored now
                proc.send_signal(signal.SIGTERM)
                return await asyncio.gather(*inflight)

        started = time.monotonic()
        responses = asyncio.run(run())
        assert [r.status_code for r in responses] == [200] * 6
        assert all(r.json()["rewards"] == [1.0, 3.0] for r in responses)
        proc.wait(timeout=20)
        assert time.monotonic() - started < 20
        log = proc.stdout.read()
        assert "draining" in log
        # After shutdown nothing listens any more.
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            raise AssertionError("service still answering after SIGTERM")
        except httpx.ConnectError:
            pass


def test_readyz_turns_503_while_draining():
    from starlette.testclient import TestClient

    from tests.services.common.toy import make_app

    app = make_app()
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        app.state.service.draining = True
        resp = client.get("/readyz")
        assert resp.status_code == 503 and "draining" in resp.json()["error"]["message"]
        assert client.get("/healthz").status_code == 200
