"""Checks shared by the balancer's contract tests: worker views, OpenAI errors, raw sockets, SSE payloads."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from gllm.testing.net import free_port


def unreachable() -> str:
    """An address where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def by_address(client: httpx.Client) -> dict[str, dict[str, Any]]:
    """`GET /workers` keyed by address."""
    response = client.get("/workers")
    assert response.status_code == 200
    return {w["address"]: w for w in response.json()}


def total_in_flight(client: httpx.Client) -> int:
    """Sum of in-flight counts over all workers."""
    return sum(w["in_flight"] for w in by_address(client).values())


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an OpenAI-style JSON error with this status; return its `error` object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["message"]
    assert "type" in error
    assert "code" in error
    return dict(error)


def raw_exchange(port: int, data: bytes, timeout: float = 15.0) -> bytes:
    """Send bytes on a fresh socket and read until the balancer closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def sse_events(lines: list[str]) -> list[str]:
    """The `data:` payloads of an SSE stream."""
    return [line[len("data: ") :] for line in lines if line.startswith("data: ")]
