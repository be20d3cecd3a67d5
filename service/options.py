"""OPTIONS answered from the route table.

Litestar 2 builds a path's automatic OPTIONS handler when the path's first handler is registered,
so its ``Allow`` names only that handler's methods (litestar-org/litestar#4169, fixed in 3.0):
``OPTIONS /v1/tenants/{id}`` said ``DELETE, OPTIONS``. That handler also inherits its controller's
guards while authentication skips OPTIONS, so a controller-wide scope guard turned it into a 403.
This middleware answers OPTIONS itself, with every method the path serves (RFC 9110, 10.2.1).
"""

from __future__ import annotations

from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Receive, Scope, Send


class AllowFromRoutes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._allow: dict[str, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        automatic = getattr(getattr(scope.get("route_handler"), "fn", None), "__name__", "") == "options_handler"
        if scope["type"] != "http" or scope["method"] != "OPTIONS" or not automatic:
            await self.app(scope, receive, send)
            return
        if self._allow is None:
            routes = scope["litestar_app"].routes
            self._allow = {r.path_format: ", ".join(sorted(r.methods)) for r in routes if isinstance(r, HTTPRoute)}
        allow = self._allow.get(scope.get("path_template", ""), "OPTIONS")
        await send({"type": "http.response.start", "status": 204, "headers": [(b"allow", allow.encode())]})
        await send({"type": "http.response.body", "body": b""})
