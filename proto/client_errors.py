"""What a reward call's failures look like: the two typed errors, and how a failed response is read."""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from proto.models import ErrorResponse


class RewardServiceError(RuntimeError):
    """The service could not give an answer before the deadline (down, overloaded, or failing)."""

    def __init__(self, service: str, url: str, cause: str, *, unreachable: bool = False):
        super().__init__(f"reward service {service!r} at {url} gave no answer: {cause}")
        self.service, self.url, self.cause = service, url, cause
        self.unreachable = unreachable  # refused connections, not slowness: the service is down


class RewardRequestError(RuntimeError):
    """The service refused the request itself (validation, size, auth): retrying cannot help."""

    def __init__(self, service: str, url: str, status: int, error_type: str, message: str):
        super().__init__(
            f"reward service {service!r} at {url} refused the request ({status} {error_type}): {message}"
        )
        self.service, self.url, self.status = service, url, status
        self.error_type, self.message = error_type, message


def refused(service: str, url: str, resp: httpx.Response) -> RewardRequestError:
    """The typed error for a response the service refused outright (retrying cannot help)."""
    try:
        err = ErrorResponse.model_validate_json(resp.content).error
        return RewardRequestError(service, url, resp.status_code, err.type.value, err.message)
    except ValidationError:
        return RewardRequestError(service, url, resp.status_code, "unknown", resp.text[:300])


def error_message(resp: httpx.Response) -> str:
    try:
        return ErrorResponse.model_validate_json(resp.content).error.message
    except ValidationError:
        return resp.text[:200] or resp.reason_phrase


def retry_after(resp: httpx.Response, cap: float) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return min(float(value), cap) if value is not None else None
    except ValueError:
        return None
