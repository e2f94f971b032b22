"""The deadline a client puts in a request: its own remaining budget, less a margin for the answer.

A client that gives up on a call at its deadline should not leave the service working on it, so
each attempt tells the service how long the caller will still wait (`ScoreRequest.deadline_ms`).
The value is relative: the service counts it from the moment the request reaches it, on its own
clock, so skewed clocks between machines do not matter. The margin leaves room for the answer to
travel back (and the request to finish arriving) before the caller stops listening.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from proto.models import MAX_DEADLINE_MS, ServiceInfo

MARGIN_S = 0.5  # the most kept back; short budgets keep back a quarter of themselves instead


def deadline_ms(remaining_s: float) -> int:
    """The `deadline_ms` to send when the caller waits `remaining_s` more seconds for the answer.

    Example:
        >>> deadline_ms(3.5), deadline_ms(60.0), deadline_ms(1.0)
        (3000, 59500, 750)
    """
    margin = min(MARGIN_S, max(remaining_s, 0.0) / 4)
    return max(1, min(MAX_DEADLINE_MS, int((remaining_s - margin) * 1000)))


def stamped(payload: bytes, remaining_s: float) -> bytes:
    """`payload`, a ScoreRequest's JSON object without `deadline_ms`, with it set from `remaining_s`.

    Spliced in front instead of serialising the request again: each retry sends a smaller budget,
    and the items (megabytes, possibly) are dumped once per call, not once per attempt.
    """
    if not payload.startswith(b'{"'):
        raise ValueError("stamped() takes the JSON object of a ScoreRequest")
    return b'{"deadline_ms":%d,' % deadline_ms(remaining_s) + payload[1:]


def deadline_payload(payload: bytes, info: ServiceInfo | None) -> bytes | Callable[[float], bytes]:
    """What to send for a ScoreRequest `payload`: for a service whose /v1/info says it honours
    deadlines, a function of the caller's remaining seconds that stamps it (called per attempt);
    for one that predates deadline_ms (and would refuse the field), `payload` as it is."""
    if info is None or info.limits.deadline_grace_ms is None:
        return payload
    return functools.partial(stamped, payload)
