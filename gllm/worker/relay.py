"""Relay one OpenAI request to the engine: body and end-to-end headers as-is, the reply streamed back."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from gllm.worker.errors import openai_error

logger = logging.getLogger("gllm.worker")

# RFC 9110 section 7.6.1 hop-by-hop headers, plus ones the transport sets for itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# The server already decoded a compressed request body, so its Content-Encoding must not travel on.
_SKIP_REQUEST = ("host", "content-length", "content-encoding")
_SKIP_RESPONSE = ("content-length", "date", "server")
# The client library would add these on its own; the engine should see only what the caller sent.
_NO_AUTO_HEADERS = ("Accept-Encoding", "Content-Type", "User-Agent")


def end_to_end(headers: Mapping[str, str], skip: Iterable[str]) -> CIMultiDict[str]:
    """Copy `headers` without hop-by-hop ones (also those named in Connection) and without `skip`."""
    dropped = set(HOP_BY_HOP) | {name.lower() for name in skip}
    for value in headers.get("Connection", "").split(","):
        if value.strip():
            dropped.add(value.strip().lower())
    return CIMultiDict((name, value) for name, value in headers.items() if name.lower() not in dropped)


def _is_stream(resp: aiohttp.ClientResponse) -> bool:
    return resp.content_length is None or resp.content_type == "text/event-stream"


async def relay(
    request: web.Request, session: aiohttp.ClientSession, url: str, timeout: aiohttp.ClientTimeout
) -> web.StreamResponse:
    """Forward `request` to `url` and relay the answer; streams are written chunk by chunk as they arrive."""
    body = await request.read()
    headers = end_to_end(request.headers, _SKIP_REQUEST)
    try:
        upstream = await session.request(
            request.method,
            url,
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            skip_auto_headers=_NO_AUTO_HEADERS,
        )
    except TimeoutError:
        return openai_error(504, "The engine did not answer in time", "timeout", "engine_timeout")
    except aiohttp.ClientError as exc:
        return openai_error(502, f"The engine cannot be reached: {exc}", "bad_gateway", "engine_unreachable")
    try:
        reply_headers = end_to_end(upstream.headers, _SKIP_RESPONSE)
        if not _is_stream(upstream):
            try:
                data = await upstream.read()
            except TimeoutError:
                return openai_error(504, "The engine did not answer in time", "timeout", "engine_timeout")
            except aiohttp.ClientError as exc:
                return openai_error(502, f"The engine reply broke off: {exc}", "bad_gateway", "engine_error")
            return web.Response(
                status=upstream.status, reason=upstream.reason, body=data, headers=reply_headers
            )
        return await _stream(request, upstream, reply_headers)
    except BaseException:
        upstream.close()  # the client left or we failed: drop the engine connection so it stops generating
        raise
    finally:
        upstream.release()


async def _stream(
    request: web.Request, upstream: aiohttp.ClientResponse, headers: CIMultiDict[str]
) -> web.StreamResponse:
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
    await response.prepare(request)
    try:
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, TimeoutError) as exc:
        # The status line is gone already: cut the client connection so the truncation is visible.
        logger.warning("engine stream for %s broke off: %r", request.path, exc)
        upstream.close()
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response
