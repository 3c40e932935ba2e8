"""``/docs``: Swagger UI, served with its own assets (from the ``swagger-ui-bundle`` package).

FastAPI's default page loads Swagger UI from a CDN: blank without a network, and a third party
told of every visit. ReDoc likewise, so ``/redoc`` is not offered.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # ships no type hints

ASSETS = "/docs/assets"


class WholeFiles:
    """Static files served whole, ``Range`` ignored (RFC 9110 allows it): Starlette answers a bad
    range in plain text (400, 416), and every error of this API is ``{"error"}``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "headers": [(name, value) for name, value in scope["headers"] if name != b"range"]}
        await self.app(scope, receive, send)


def add_docs(app: FastAPI) -> None:
    app.mount(ASSETS, WholeFiles(StaticFiles(directory=str(swagger_ui_path))), name="docs-assets")

    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
