"""OpenAI-style error replies of the worker."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web


def openai_error(
    status: int, message: str, error_type: str, code: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An OpenAI-shaped JSON error: {"error": {"message", "type", "param", "code"}}."""
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)
