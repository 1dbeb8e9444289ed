"""Response bodies the balancer produces itself: OpenAI-style errors, JSON and text."""

from __future__ import annotations

from typing import Any

import orjson

from gllm.http.server import HttpRequest, ResponseWriter

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


def openai_error(status: int, message: str, code: str) -> bytes:
    """An OpenAI-shaped error body."""
    return orjson.dumps(
        {
            "error": {
                "message": message,
                "type": _ERROR_TYPES.get(status, "api_error"),
                "param": None,
                "code": code,
            }
        }
    )


def send_error(
    writer: ResponseWriter,
    status: int,
    message: str,
    code: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Send an OpenAI-shaped error response."""
    writer.send(status, openai_error(status, message, code), JSON, headers)


def send_json(writer: ResponseWriter, status: int, payload: Any) -> None:
    """Send a JSON response."""
    writer.send(status, orjson.dumps(payload), JSON)


def send_text(writer: ResponseWriter, status: int, text: str) -> None:
    """Send a plain-text response."""
    writer.send(status, text.encode(), TEXT)


def read_json_object(request: HttpRequest, writer: ResponseWriter) -> dict[str, Any] | None:
    """Parse the body as a JSON object; on failure send a 400 that says why and return None."""
    if not request.body:
        send_error(writer, 400, "Request body is empty; a JSON object is required", "invalid_json")
        return None
    try:
        payload = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        send_error(writer, 400, f"Request body is not valid JSON: {exc}", "invalid_json")
        return None
    if not isinstance(payload, dict):
        send_error(writer, 400, "Request body must be a JSON object", "invalid_json")
        return None
    return payload
