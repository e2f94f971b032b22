"""A minimal HTTP/1.1 load generator for the benches: many POSTs over a few keep-alive connections.

httpx's AsyncClient costs more CPU per request than the gateway route it is meant to measure (with
1,024 requests queued on 64 connections its pool re-scans every waiting request on each event), and
the bench client shares the machine's cores with the services: a profile of bench_gateway showed
the client using more CPU than the gateway and both services together. Like wrk, this writes
pre-encoded requests and reads Content-Length bodies, so what is measured is the server.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit


class LoadError(RuntimeError):
    """A request in the load run did not get a 200 (the bench must not time failures)."""


def encode_post(url: str, path: str, body: bytes, token: str | None = None) -> bytes:
    """One complete keep-alive POST request, bytes ready for the socket."""
    host = urlsplit(url).netloc
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length is None:
        raise LoadError(f"HTTP {status} without Content-Length: this generator reads only sized bodies")
    return status, await reader.readexactly(length)


async def post_all(url: str, requests: list[bytes], connections: int) -> tuple[float, list[float]]:
    """Send every request (as if all were issued at once); (wall seconds, per-request latency).

    A request's latency runs from the start of the run to its answer, queueing for a free
    connection included: that is when the caller that issued all of them at once gets it back.
    """
    parts = urlsplit(url)
    conns = [await asyncio.open_connection(parts.hostname, parts.port) for _ in range(connections)]
    latencies = [0.0] * len(requests)
    next_index = iter(range(len(requests)))
    started = time.perf_counter()

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i in next_index:
            writer.write(requests[i])
            status, body = await _read_response(reader)
            if status != 200:
                raise LoadError(f"request {i}: HTTP {status}: {body[:300]!r}")
            latencies[i] = time.perf_counter() - started

    try:
        await asyncio.gather(*(worker(r, w) for r, w in conns))
        wall = time.perf_counter() - started
    finally:
        for _, writer in conns:
            writer.close()
    return wall, latencies
