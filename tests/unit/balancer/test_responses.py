"""Bodies the balancer writes itself: OpenAI-style errors and JSON-object parsing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gllm.balancer.responses import openai_error, read_json_object
from gllm.http.server import HttpRequest


class RecordingWriter:
    """Stands in for ResponseWriter: records what was sent."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.body = b""

    def send(self, status: int, body: bytes, content_type: bytes = b"", headers: Any = ()) -> None:
        self.status, self.body = status, body


def post(body: bytes) -> HttpRequest:
    """A POST with the given body."""
    return HttpRequest("POST", "/completions", "", "1.1", [], body, True)


@pytest.mark.unit
class TestOpenAIError:
    """Errors have OpenAI's shape."""

    @pytest.mark.parametrize(
        ("status", "type_"),
        [
            (400, "invalid_request_error"),
            (503, "service_unavailable"),
            (504, "timeout_error"),
            (599, "api_error"),
        ],
    )
    def test_shape(self, status: int, type_: str) -> None:
        """`{"error": {"message", "type", "param", "code"}}`."""
        error = orjson.loads(openai_error(status, "it broke", "broken"))["error"]
        assert error == {"message": "it broke", "type": type_, "param": None, "code": "broken"}


@pytest.mark.unit
class TestReadJsonObject:
    """Only a JSON object passes; anything else gets a 400 that says why."""

    def test_object(self) -> None:
        """An object is returned and nothing is sent."""
        writer = RecordingWriter()
        assert read_json_object(post(b'{"a": [1, 2]}'), writer) == {"a": [1, 2]}  # type: ignore[arg-type]
        assert writer.status is None

    @pytest.mark.parametrize(
        ("body", "why"),
        [
            (b"", "empty"),
            (b"{", "not valid JSON"),
            (b"\xff\xfe", "not valid JSON"),
            (b"[1]", "must be a JSON object"),
            (b'"x"', "must be a JSON object"),
            (b"5", "must be a JSON object"),
            (b"null", "must be a JSON object"),
        ],
    )
    def test_not_an_object(self, body: bytes, why: str) -> None:
        """400 with an OpenAI-style error naming the problem."""
        writer = RecordingWriter()
        assert read_json_object(post(body), writer) is None  # type: ignore[arg-type]
        assert writer.status == 400
        assert why in orjson.loads(writer.body)["error"]["message"]
