"""The client's side of the balancer protocol: settings, request building and error decoding, without I/O."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import orjson

from gllm.client._retry import RetryPolicy, parse_retry_after
from gllm.client.errors import GLLMConnectionError, GLLMError, GLLMTimeoutError, RemoteError

ReturnMode = Literal["openai", "primitives", "raw"]
RETURN_MODES: tuple[str, ...] = ("openai", "primitives", "raw")

_ERROR_TEXT_LIMIT = 2000


class Kind(enum.Enum):
    """The two generation routes."""

    CHAT = "/chat/completions"
    COMPLETION = "/completions"


@dataclass(frozen=True)
class ClientSettings:
    """Everything a transport needs to know, fixed when the client is built."""

    base_url: str
    api_key: str | None = None
    timeout: float | None = 600.0  # read timeout of generation calls; None waits forever
    connect_timeout: float = 5.0
    control_timeout: float = 30.0  # health, workers, models and admin calls
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    headers: Mapping[str, str] = field(default_factory=dict)

    def base_headers(self) -> dict[str, str]:
        """Headers sent with every request."""
        headers = {"Accept": "application/json", **self.headers}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def generation_timeout(self) -> httpx.Timeout:
        """Timeout of a completion call: short to connect, `timeout` for each read."""
        return httpx.Timeout(self.timeout, connect=self.connect_timeout)

    def control(self, timeout: float | None = None) -> httpx.Timeout:
        """Timeout of a control call, `timeout` overriding the client's default."""
        seconds = self.control_timeout if timeout is None else timeout
        return httpx.Timeout(seconds, connect=min(self.connect_timeout, seconds))


@dataclass(frozen=True)
class RequestSpec:
    """One HTTP request, fully described before it is sent."""

    method: str
    path: str
    timeout: httpx.Timeout
    body: Mapping[str, Any] | None = None
    retry: bool = True

    def content(self) -> bytes | None:
        """The JSON-encoded body, if any."""
        return None if self.body is None else orjson.dumps(self.body)

    def headers(self) -> dict[str, str]:
        """Request-specific headers."""
        return {"Content-Type": "application/json"} if self.body is not None else {}


def normalize_address(address: str) -> str:
    """Turn 'host:port', 'http://host:port/' and the like into a base URL without trailing slash."""
    text = address.strip()
    if not text:
        raise ValueError("server_address must not be empty")
    if "://" not in text:
        text = f"http://{text}"
    scheme = text.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"server_address must use http or https, not {scheme!r}")
    return text.rstrip("/")


def check_return_mode(return_mode: str) -> None:
    """Raise ValueError for an unknown return mode, before anything is sent."""
    if return_mode not in RETURN_MODES:
        raise ValueError(f"unknown return_mode {return_mode!r}; use one of {', '.join(RETURN_MODES)}")


def load_model_spec(
    model_identifier: str, force_reload: bool, timeout: float | None, settings: ClientSettings
) -> RequestSpec:
    """POST /load_model: ask every worker to load a model."""
    if not model_identifier:
        raise ValueError("model_identifier must not be empty")
    body = {"model_path": model_identifier, "force_reload": bool(force_reload)}
    return RequestSpec("POST", "/load_model", settings.control(timeout), body)


def worker_spec(path: str, address: str, settings: ClientSettings) -> RequestSpec:
    """POST /add_worker or /remove_worker for one worker address."""
    return RequestSpec("POST", path, settings.control(), {"address": address})


def control_spec(
    method: str, path: str, settings: ClientSettings, timeout: float | None = None, retry: bool = True
) -> RequestSpec:
    """A body-less control call: /health, /workers, /models, /release_gpus."""
    return RequestSpec(method, path, settings.control(timeout), None, retry)


def decode_json(content: bytes, what: str) -> Any:
    """Decode a successful JSON response body."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise GLLMError(f"{what}: the server sent invalid JSON: {content[:200]!r}") from exc


def decode_object(content: bytes, what: str) -> dict[str, Any]:
    """Decode a successful response that must be a JSON object."""
    data = decode_json(content, what)
    if not isinstance(data, dict):
        raise GLLMError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def model_ids(models_payload: Any) -> list[str]:
    """The model ids of an OpenAI model list."""
    entries = models_payload.get("data") if isinstance(models_payload, dict) else None
    if not isinstance(entries, list):
        raise GLLMError(f"GET /models: expected an OpenAI model list, got {models_payload!r:.200}")
    return [str(entry["id"]) for entry in entries if isinstance(entry, dict) and entry.get("id")]


def error_from_response(
    status: int, headers: Mapping[str, str], content: bytes, method: str = "", url: str = ""
) -> RemoteError:
    """Build the RemoteError of an error response, reading OpenAI-shaped JSON errors and plain text alike."""
    text = content.decode("utf-8", errors="replace")
    message, error_type, code = _error_fields(text)
    if not message:
        message = text.strip()[:_ERROR_TEXT_LIMIT] or _reason(status)
    return RemoteError(
        status,
        message,
        error_type=error_type,
        code=code,
        body=text,
        retry_after=parse_retry_after(headers.get("retry-after")),
        method=method,
        url=url,
    )


def error_from_payload(payload: Mapping[str, Any], default_status: int = 500) -> RemoteError | None:
    """The RemoteError carried by a JSON payload (an error event inside a stream), or None if it is no error."""
    if "error" not in payload and payload.get("object") != "error":
        return None
    message, error_type, code = _fields_of(payload)
    status = code if isinstance(code, int) and 400 <= code < 600 else default_status
    return RemoteError(
        status, message or "error in stream", error_type=error_type, code=code, body=str(payload)
    )


def _error_fields(text: str) -> tuple[str, str | None, str | int | None]:
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "", None, None
    return _fields_of(payload) if isinstance(payload, dict) else ("", None, None)


def _fields_of(payload: Mapping[str, Any]) -> tuple[str, str | None, str | int | None]:
    # Shapes seen in the wild: OpenAI {"error": {...}}, older vLLM {"object": "error", "message": ...},
    # FastAPI {"detail": ...} and {"error": "text"}.
    error = payload.get("error", payload)
    if isinstance(error, str):
        return error, None, None
    if not isinstance(error, dict):
        return "", None, None
    message = error.get("message") or error.get("detail") or ""
    error_type = error.get("type")
    code = error.get("code")
    return (
        str(message),
        str(error_type) if error_type is not None else None,
        code if isinstance(code, str | int) and not isinstance(code, bool) else None,
    )


def _reason(status: int) -> str:
    return httpx.codes.get_reason_phrase(status) or f"HTTP {status}"


def transport_error(exc: httpx.TransportError, spec: RequestSpec, base_url: str) -> GLLMError:
    """The client error for a transport failure: a timeout, or a connection that failed or broke."""
    where = f"{spec.method} {base_url}{spec.path}"
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return GLLMTimeoutError(f"{where}: timed out ({type(exc).__name__})")
    return GLLMConnectionError(f"{where}: {type(exc).__name__}: {exc}")


def pick_model(ids: Sequence[str]) -> str:
    """The model to use when the caller names none: the first the server lists."""
    if not ids:
        raise GLLMError("the server serves no model yet: pass model=..., or call load_model first")
    return ids[0]
