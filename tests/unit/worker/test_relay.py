"""The relay on in-process loopback servers: header filtering, unreachable and slow engines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gllm.testing import free_port
from gllm.worker.relay import end_to_end, relay

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def through_relay(
    upstream: Handler | None, timeout: aiohttp.ClientTimeout
) -> tuple[int, dict[str, str], str]:
    """POST via a relaying app to `upstream` (None: a closed port); the status, headers and body seen."""
    engine: TestServer | None = None
    if upstream is not None:
        engine_app = web.Application()
        engine_app.router.add_post("/v1/x", upstream)
        engine = TestServer(engine_app)
        await engine.start_server()
    target = f"http://127.0.0.1:{engine.port if engine else free_port()}/v1/x"
    async with aiohttp.ClientSession(auto_decompress=False) as session:

        async def handler(request: web.Request) -> web.StreamResponse:
            return await relay(request, session, target, timeout)

        app = web.Application()
        app.router.add_post("/x", handler)
        try:
            async with TestClient(TestServer(app)) as client:
                resp = await client.post("/x", data=b'{"a": 1}')
                return resp.status, dict(resp.headers), await resp.text()
        finally:
            if engine is not None:
                await engine.close()


@pytest.mark.unit
class TestRelayErrors:
    """Unreachable engine -> 502, slow engine -> 504, both OpenAI-shaped JSON."""

    def test_unreachable_engine_is_502(self) -> None:
        """Nothing listens on the engine port."""
        status, headers, body = asyncio.run(through_relay(None, aiohttp.ClientTimeout(total=10)))
        assert status == 502
        assert headers["Content-Type"].startswith("application/json")
        assert '"code": "engine_unreachable"' in body

    def test_slow_engine_is_504(self) -> None:
        """An engine slower than the request timeout."""

        async def slow(request: web.Request) -> web.Response:
            await asyncio.sleep(5)
            return web.Response(text="late")

        status, _, body = asyncio.run(through_relay(slow, aiohttp.ClientTimeout(total=0.3)))
        assert status == 504
        assert "engine_timeout" in body

    def test_body_and_status_pass(self) -> None:
        """The engine's status, body and content type come back."""

        async def echo(request: web.Request) -> web.Response:
            return web.Response(status=418, body=await request.read(), content_type="application/x-test")

        status, headers, body = asyncio.run(through_relay(echo, aiohttp.ClientTimeout(total=10)))
        assert (status, body) == (418, '{"a": 1}')
        assert headers["Content-Type"] == "application/x-test"


@pytest.mark.unit
class TestEndToEnd:
    """Hop-by-hop header filtering."""

    def test_drops_hop_by_hop_and_connection_listed(self) -> None:
        """Standard hop-by-hop headers and those named in Connection are dropped; others kept."""
        headers = {
            "Connection": "close, X-Private",
            "X-Private": "1",
            "Keep-Alive": "timeout=5",
            "Transfer-Encoding": "chunked",
            "TE": "trailers",
            "Upgrade": "h2c",
            "Authorization": "Bearer t",
            "X-Request-Id": "abc",
        }
        assert dict(end_to_end(headers, skip=())) == {"Authorization": "Bearer t", "X-Request-Id": "abc"}

    def test_skip_is_case_insensitive(self) -> None:
        """Extra names to skip match in any case."""
        assert dict(
            end_to_end({"Host": "h", "content-length": "3", "A": "b"}, skip=("host", "Content-Length"))
        ) == {"A": "b"}
