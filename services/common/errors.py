"""The one place a failure becomes an HTTP status and an ErrorResponse body."""

from __future__ import annotations

from proto.models import ErrorBody, ErrorResponse, ErrorType


class ServiceError(Exception):
    """A whole-request failure of a known type; its message is shown to the caller as is."""

    def __init__(self, type_: ErrorType, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.type = type_
        self.message = message
        self.retry_after = retry_after


def error_payload(type_: ErrorType, message: str, request_id: str | None = None) -> bytes:
    body = ErrorResponse(error=ErrorBody(type=type_, message=message, request_id=request_id))
    return body.model_dump_json(exclude_none=True).encode()


def error_headers(retry_after: int | None = None, request_id: str | None = None) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json")]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    return headers


async def send_error(send, type_: ErrorType, message: str, *, retry_after: int | None = None,
                     request_id: str | None = None, extra_headers=()) -> None:
    """Answer an ASGI request with the typed error body, for middleware that runs before routing."""
    payload = error_payload(type_, message, request_id)
    headers = error_headers(retry_after, request_id) + list(extra_headers)
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": type_.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def validation_message(errors: list[dict]) -> str:
    """A short, readable summary of pydantic errors: where, and what is wrong."""
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more

