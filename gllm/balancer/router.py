"""Path table of the balancer: every route at the root and under /v1, with an admin-key guard."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gllm.balancer.responses import send_error
from gllm.http.server import HttpRequest, ResponseWriter

RouteHandler = Callable[[HttpRequest, ResponseWriter], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route:
    """One method on one path."""

    handler: RouteHandler
    admin: bool


class Router:
    """Dispatches a request to its route; answers 404, 405 and 401 itself."""

    def __init__(self, admin_key: str | None) -> None:
        self._routes: dict[str, dict[str, Route]] = {}
        self._admin_token = f"Bearer {admin_key}".encode() if admin_key else None

    def add(self, method: str, path: str, handler: RouteHandler, admin: bool = False) -> None:
        """Serve `method path` and `method /v1path`."""
        for full in (path, "/v1" + path):
            self._routes.setdefault(full, {})[method] = Route(handler, admin)

    async def __call__(self, request: HttpRequest, writer: ResponseWriter) -> None:
        methods = self._routes.get(request.path)
        if methods is None:
            path = request.path
            if len(path) > 1 and path.endswith("/"):
                methods = self._routes.get(path.rstrip("/"))
            if methods is None:
                send_error(writer, 404, f"No route for {request.path[:200]}", "not_found")
                return
        route = methods.get(request.method)
        if route is None:
            allow = ", ".join(sorted(methods)).encode()
            send_error(
                writer,
                405,
                f"Method {request.method[:20]} not allowed here",
                "method_not_allowed",
                ((b"allow", allow),),
            )
            return
        if route.admin and not self._authorized(request):
            send_error(
                writer,
                401,
                "This control route needs 'Authorization: Bearer <admin key>'",
                "unauthorized",
                ((b"www-authenticate", b"Bearer"),),
            )
            return
        await route.handler(request, writer)

    def _authorized(self, request: HttpRequest) -> bool:
        if self._admin_token is None:
            return True
        given = request.header(b"authorization") or b""
        return hmac.compare_digest(given, self._admin_token)
