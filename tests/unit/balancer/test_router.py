"""The path table: root and /v1 routes, 404, 405 and the admin-key guard."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from gllm.balancer.router import Router
from gllm.http.headers import Headers
from gllm.http.server import HttpRequest


class RecordingWriter:
    """Stands in for ResponseWriter: records the one complete response a route sends."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.body = b""
        self.headers: dict[bytes, bytes] = {}

    def send(
        self,
        status: int,
        body: bytes,
        content_type: bytes = b"application/json",
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        self.status, self.body, self.headers = status, body, dict(headers)

    def json(self) -> Any:
        return orjson.loads(self.body)


def request(method: str, path: str, headers: Headers | None = None) -> HttpRequest:
    """A parsed request with no body."""
    return HttpRequest(method, path, "", "1.1", headers or [], b"", True)


def make_router(admin_key: str | None = None) -> tuple[Router, list[str]]:
    """A router with one open GET route and one admin POST route that record their calls."""
    router = Router(admin_key)
    calls: list[str] = []

    async def open_route(req: HttpRequest, writer: Any) -> None:
        calls.append(f"open {req.path}")
        writer.send(200, b"{}")

    async def admin_route(req: HttpRequest, writer: Any) -> None:
        calls.append(f"admin {req.path}")
        writer.send(200, b"{}")

    router.add("GET", "/health", open_route)
    router.add("POST", "/add_worker", admin_route, admin=True)
    return router, calls


def dispatch(router: Router, req: HttpRequest) -> RecordingWriter:
    """Run the router on one request and return what it sent."""
    writer = RecordingWriter()
    asyncio.run(router(req, writer))  # type: ignore[arg-type]
    return writer


@pytest.mark.unit
class TestRouting:
    """Every route is served at the root and under /v1."""

    @pytest.mark.parametrize("path", ["/health", "/v1/health", "/health/", "/v1/health/"])
    def test_root_and_v1(self, path: str) -> None:
        """The same handler answers at the root, under /v1 and with a trailing slash."""
        router, calls = make_router()
        assert dispatch(router, request("GET", path)).status == 200
        assert calls == [f"open {path}"]

    @pytest.mark.parametrize("path", ["/", "/nope", "/v2/health", "/v1", "/healthz", "/v1/v1/health"])
    def test_unknown_path_404(self, path: str) -> None:
        """Unknown paths get an OpenAI-style 404 and reach no handler."""
        router, calls = make_router()
        writer = dispatch(router, request("GET", path))
        assert writer.status == 404
        assert writer.json()["error"]["code"] == "not_found"
        assert calls == []

    def test_wrong_method_405(self) -> None:
        """A known path with another method gets 405 and an Allow header."""
        router, calls = make_router()
        writer = dispatch(router, request("DELETE", "/health"))
        assert writer.status == 405
        assert writer.headers[b"allow"] == b"GET"
        assert calls == []


@pytest.mark.unit
class TestAdminGuard:
    """With an admin key, admin routes need `Authorization: Bearer <key>`."""

    @pytest.mark.parametrize(
        "headers",
        [
            [],
            [(b"authorization", b"Bearer wrong")],
            [(b"authorization", b"secret")],
            [(b"authorization", b"Basic secret")],
            [(b"authorization", b"Bearer secret ")],
            [(b"x-api-key", b"secret")],
        ],
    )
    def test_missing_or_wrong_key_401(self, headers: Headers) -> None:
        """No key or a wrong key gets 401 with WWW-Authenticate and never reaches the handler."""
        router, calls = make_router("secret")
        writer = dispatch(router, request("POST", "/v1/add_worker", headers))
        assert writer.status == 401
        assert writer.headers[b"www-authenticate"] == b"Bearer"
        assert writer.json()["error"]["type"] == "authentication_error"
        assert calls == []

    def test_right_key(self) -> None:
        """The right key passes."""
        router, calls = make_router("secret")
        writer = dispatch(router, request("POST", "/add_worker", [(b"authorization", b"Bearer secret")]))
        assert writer.status == 200
        assert calls == ["admin /add_worker"]

    def test_open_routes_need_no_key(self) -> None:
        """Routes not marked admin ignore the key."""
        router, _ = make_router("secret")
        assert dispatch(router, request("GET", "/health")).status == 200

    def test_no_key_configured_means_open(self) -> None:
        """Without an admin key every route is open."""
        router, _ = make_router(None)
        assert dispatch(router, request("POST", "/add_worker")).status == 200
