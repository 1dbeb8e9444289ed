"""Settings, request specs and error decoding."""

from __future__ import annotations

import httpx
import orjson
import pytest

from gllm.client._protocol import (
    ClientSettings,
    RequestSpec,
    check_return_mode,
    control_spec,
    decode_json,
    decode_object,
    error_from_payload,
    error_from_response,
    load_model_spec,
    model_ids,
    normalize_address,
    pick_model,
    transport_error,
    worker_spec,
)
from gllm.client.errors import GLLMConnectionError, GLLMError, GLLMTimeoutError, RemoteError

SETTINGS = ClientSettings("http://127.0.0.1:5333", control_timeout=7.0, connect_timeout=2.0)


@pytest.mark.unit
class TestAddress:
    """The server address becomes a clean base URL."""

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("http://h:1", "http://h:1"),
            ("http://h:1/", "http://h:1"),
            ("http://h:1///", "http://h:1"),
            ("h:5333", "http://h:5333"),
            ("  https://h/v1/ ", "https://h/v1"),
        ],
    )
    def test_normalizes(self, given: str, expected: str) -> None:
        """Trailing slashes go, a missing scheme becomes http."""
        assert normalize_address(given) == expected

    @pytest.mark.parametrize("bad", ["", "   ", "ftp://h", "unix:///tmp/s"])
    def test_rejects(self, bad: str) -> None:
        """Empty addresses and other schemes are refused."""
        with pytest.raises(ValueError):
            normalize_address(bad)


@pytest.mark.unit
class TestSettings:
    """Headers and timeouts."""

    def test_api_key_becomes_bearer(self) -> None:
        """api_key is sent as a bearer token."""
        headers = ClientSettings("http://h", api_key="k").base_headers()
        assert headers["Authorization"] == "Bearer k"

    def test_no_key_no_authorization(self) -> None:
        """Without a key no Authorization header is sent."""
        assert "Authorization" not in ClientSettings("http://h").base_headers()

    def test_extra_headers(self) -> None:
        """Extra headers are merged in."""
        assert ClientSettings("http://h", headers={"X-A": "1"}).base_headers()["X-A"] == "1"

    def test_generation_timeout(self) -> None:
        """Generation reads may take `timeout`; connecting is short."""
        timeout = ClientSettings("http://h", timeout=99.0, connect_timeout=3.0).generation_timeout()
        assert (timeout.read, timeout.connect) == (99.0, 3.0)

    def test_unlimited_generation(self) -> None:
        """timeout=None waits forever for generation, but still connects with a timeout."""
        timeout = ClientSettings("http://h", timeout=None).generation_timeout()
        assert timeout.read is None
        assert timeout.connect == 5.0

    def test_control_timeout_override(self) -> None:
        """A call's own timeout replaces the default, and bounds connecting too."""
        assert SETTINGS.control().read == 7.0
        short = SETTINGS.control(0.5)
        assert (short.read, short.connect) == (0.5, 0.5)


@pytest.mark.unit
class TestSpecs:
    """Request specs of the control calls."""

    def test_load_model_body(self) -> None:
        """load_model sends model_path and force_reload with the caller's timeout."""
        spec = load_model_spec("org/m", True, 10, SETTINGS)
        assert (spec.method, spec.path) == ("POST", "/load_model")
        assert orjson.loads(spec.content() or b"") == {"model_path": "org/m", "force_reload": True}
        assert spec.timeout.read == 10
        assert spec.headers() == {"Content-Type": "application/json"}

    def test_load_model_needs_a_name(self) -> None:
        """An empty model name is refused before sending."""
        with pytest.raises(ValueError):
            load_model_spec("", False, 10, SETTINGS)

    def test_worker_spec(self) -> None:
        """add_worker sends the address."""
        spec = worker_spec("/add_worker", "http://w:1", SETTINGS)
        assert spec.body == {"address": "http://w:1"}

    def test_control_spec_has_no_body(self) -> None:
        """GET specs carry no body and no content type."""
        spec = control_spec("GET", "/workers", SETTINGS, retry=False)
        assert spec.content() is None
        assert spec.headers() == {}
        assert spec.retry is False

    @pytest.mark.parametrize("mode", ["openai", "primitives", "raw"])
    def test_return_modes(self, mode: str) -> None:
        """The three return modes are accepted."""
        check_return_mode(mode)

    def test_unknown_return_mode(self) -> None:
        """A typo in return_mode fails loudly."""
        with pytest.raises(ValueError, match="return_mode"):
            check_return_mode("text")


@pytest.mark.unit
class TestErrors:
    """Error responses become RemoteError with the server's message."""

    def test_openai_shaped(self) -> None:
        """OpenAI-shaped JSON gives message, type and code."""
        body = b'{"error": {"message": "no such model", "type": "invalid_request_error", "code": "model_not_found"}}'
        error = error_from_response(404, {}, body, "POST", "http://h/chat/completions")
        assert (error.status_code, error.message) == (404, "no such model")
        assert (error.error_type, error.code) == ("invalid_request_error", "model_not_found")
        assert (error.method, error.url) == ("POST", "http://h/chat/completions")
        assert str(error) == "404: no such model"

    def test_plain_text(self) -> None:
        """A text body is the message."""
        error = error_from_response(500, {}, b"Failed to load model x on http://w:1\n")
        assert error.message == "Failed to load model x on http://w:1"
        assert error.code is None

    def test_old_vllm_shape(self) -> None:
        """vLLM's older {"object": "error", "message": ...} shape is read too."""
        error = error_from_response(
            400, {}, b'{"object": "error", "message": "bad", "type": "BadRequestError"}'
        )
        assert (error.message, error.error_type) == ("bad", "BadRequestError")

    def test_fastapi_detail_and_string_error(self) -> None:
        """{"detail": ...} and {"error": "text"} shapes give their text."""
        assert error_from_response(422, {}, b'{"detail": "nope"}').message == "nope"
        assert error_from_response(400, {}, b'{"error": "bad thing"}').message == "bad thing"

    def test_empty_body_uses_reason(self) -> None:
        """No body: the reason phrase."""
        assert error_from_response(503, {}, b"").message == "Service Unavailable"
        assert error_from_response(599, {}, b"").message == "HTTP 599"

    def test_retry_after(self) -> None:
        """Retry-After is parsed into seconds."""
        headers = httpx.Headers({"Retry-After": "4"})
        assert error_from_response(503, headers, b"loading").retry_after == 4.0

    def test_json_list_body(self) -> None:
        """Odd JSON falls back to the text."""
        assert error_from_response(400, {}, b"[1, 2]").message == "[1, 2]"

    def test_error_event_in_stream(self) -> None:
        """A stream's error payload becomes a RemoteError with its code as status."""
        error = error_from_payload({"error": {"message": "boom", "code": 400}})
        assert isinstance(error, RemoteError)
        assert (error.status_code, error.message) == (400, "boom")

    def test_error_event_without_http_code(self) -> None:
        """A string code leaves the status at 500."""
        error = error_from_payload({"error": {"message": "boom", "code": "oops"}})
        assert error is not None
        assert (error.status_code, error.code) == (500, "oops")

    def test_chunk_is_not_an_error(self) -> None:
        """An ordinary chunk carries no error."""
        assert error_from_payload({"choices": []}) is None

    def test_transport_errors(self) -> None:
        """Read timeouts become GLLMTimeoutError, connection failures GLLMConnectionError."""
        spec = RequestSpec("GET", "/workers", SETTINGS.control())
        timeout_error = transport_error(httpx.ReadTimeout("slow"), spec, "http://h")
        assert isinstance(timeout_error, GLLMTimeoutError)
        assert isinstance(timeout_error, TimeoutError)
        connect_error = transport_error(httpx.ConnectTimeout("slow"), spec, "http://h")
        assert isinstance(connect_error, GLLMConnectionError)
        assert isinstance(connect_error, ConnectionError)
        assert "GET http://h/workers" in str(connect_error)


@pytest.mark.unit
class TestDecoding:
    """Successful bodies."""

    def test_object(self) -> None:
        """A JSON object decodes."""
        assert decode_object(b'{"a": 1}', "x") == {"a": 1}

    def test_not_an_object(self) -> None:
        """A list where an object is due is an error."""
        with pytest.raises(GLLMError, match="JSON object"):
            decode_object(b"[1]", "x")

    def test_invalid_json(self) -> None:
        """Garbage is reported with what was asked."""
        with pytest.raises(GLLMError, match="GET /workers"):
            decode_json(b"<html>", "GET /workers")

    def test_model_ids(self) -> None:
        """Model ids come from the OpenAI list."""
        payload = {"object": "list", "data": [{"id": "a"}, {"id": "b"}, {"nope": 1}]}
        assert model_ids(payload) == ["a", "b"]

    def test_model_ids_bad_payload(self) -> None:
        """A payload that is no model list is an error."""
        with pytest.raises(GLLMError):
            model_ids([1, 2])

    def test_pick_model(self) -> None:
        """The first model is the default; none is an error that says what to do."""
        assert pick_model(["a", "b"]) == "a"
        with pytest.raises(GLLMError, match="load_model"):
            pick_model([])
