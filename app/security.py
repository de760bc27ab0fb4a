"""Token protection: with LATENTMAP_TOKEN set, every request that changes state needs the token.

A request carries the token as `Authorization: Bearer TOKEN`, or as the session cookie that the
login page (`GET/POST /login`) sets: HttpOnly (scripts cannot read it) and SameSite=Strict (other
sites cannot make the browser send it, so a cross-site form cannot post with it). The cookie holds
an HMAC of the token, not the token itself. Every comparison is constant-time (hmac.compare_digest
of fixed-length digests). Reads (GET/HEAD) stay open unless LATENTMAP_PROTECT_READS=true; the
login page, /static and the Plotly bundle are always open so the login page can render.

Whatever the token, a state-changing request that a browser sends from another site (its Origin
header names another host) is refused with 403: a page elsewhere cannot post to a local server.
With `allowed_hosts` (set by `latentmap serve` on a loopback address) a request whose Host header
names another host is refused with 400, which stops DNS-rebinding pages from reading or writing.

Written as a plain ASGI middleware (not BaseHTTPMiddleware) so streamed responses such as the
job events (server-sent events) pass through untouched.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any, Awaitable, Callable, MutableMapping
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.settings import Settings, get_settings

COOKIE_NAME = "latentmap_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Always reachable, even with protected reads: the login form and what it needs to render.
OPEN_PATHS = frozenset({"/login", "/logout"})
OPEN_PREFIXES = ("/static/", "/vendor/")
COOKIE_MAX_AGE = 30 * 24 * 3600

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def session_value(token: str) -> str:
    """What the session cookie holds for `token`: an HMAC keyed by the token (never the token)."""
    return hmac.new(token.encode("utf-8"), b"latentmap-session-v1", hashlib.sha256).hexdigest()


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time: compares SHA-256 digests, so neither content nor length leaks through timing."""
    return given is not None and hmac.compare_digest(_digest(given), _digest(token))


def _bearer(headers: dict[bytes, bytes]) -> str | None:
    value = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, credential = value.partition(" ")
    return credential.strip() if scheme.lower() == "bearer" and credential.strip() else None


def _cookie(headers: dict[bytes, bytes]) -> str | None:
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME:
            return value
    return None


def is_authenticated(headers: dict[bytes, bytes], token: str) -> bool:
    """Whether the request headers carry `token` (bearer header) or its session cookie."""
    if token_matches(_bearer(headers), token):
        return True
    cookie = _cookie(headers)
    return cookie is not None and hmac.compare_digest(_digest(cookie), _digest(session_value(token)))


def is_cross_site(headers: dict[bytes, bytes]) -> bool:
    """Whether a browser sent the request from another site's page (its Origin is not this server).

    Browsers send Origin with every cross-origin POST, including the "simple" ones (a form posting
    multipart data) that need no CORS preflight; without this check any web page could upload to or
    start work on a server on 127.0.0.1 that has no token. Clients without Origin (curl, the CLI) pass.
    """
    origin = headers.get(b"origin")
    if origin is None:
        return False
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    return urlsplit(origin.decode("latin-1").strip().lower()).netloc != host or not host


def host_allowed(headers: dict[bytes, bytes], allowed: list[str]) -> bool:
    """Whether the Host header names one of `allowed` (any port). Refusing other names stops DNS
    rebinding: a page on evil.example re-pointed at 127.0.0.1 is same-origin with itself, so only
    its Host header (evil.example) gives it away."""
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    name = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in {item.lower().strip("[]") for item in allowed}


def needs_token(method: str, path: str, protect_reads: bool) -> bool:
    """Whether a request must carry the token (when one is configured)."""
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return False
    return method.upper() not in SAFE_METHODS or protect_reads


class TokenMiddleware:
    """Answers 401 (JSON, WWW-Authenticate: Bearer) to requests that need the token and lack it.

    A browser asking for a page (GET with Accept: text/html) is sent to the login page instead.
    Settings are read on the first request, so tests that override get_settings are honoured.
    """

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app, self.fastapi_app = app, fastapi_app
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = self.fastapi_app.dependency_overrides.get(get_settings, get_settings)()
        return self._settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self.settings()
        token = settings.token
        method, path = scope["method"], scope["path"]
        headers = dict(scope.get("headers") or [])
        if settings.allowed_hosts and not host_allowed(headers, settings.allowed_hosts):
            message = (f"this server answers to {', '.join(settings.allowed_hosts)}, not to Host"
                       f" {headers.get(b'host', b'').decode('latin-1')!r} (set LATENTMAP_ALLOWED_HOSTS to add names)")
            await Response(json.dumps({"detail": message}), status_code=400, media_type="application/json")(scope, receive, send)
            return
        if method.upper() not in SAFE_METHODS and is_cross_site(headers):
            message = ("cross-site request refused: this server accepts changes only from its own pages"
                       f" (Origin {headers[b'origin'].decode('latin-1')!r} is not this server)")
            await Response(json.dumps({"detail": message}), status_code=403, media_type="application/json")(scope, receive, send)
            return
        if not token or not needs_token(method, path, settings.protect_reads):
            await self.app(scope, receive, send)
            return
        if is_authenticated(headers, token):
            await self.app(scope, receive, send)
            return
        accept = headers.get(b"accept", b"").decode("latin-1")
        if method in ("GET", "HEAD") and "text/html" in accept and not path.startswith("/api/"):
            target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
            response: Response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        else:
            what = "change anything" if method.upper() not in SAFE_METHODS else "be read"
            message = (f"this server needs its token for requests that {what}: send 'Authorization: Bearer <token>'"
                       f" (the value of LATENTMAP_TOKEN) or log in at /login")
            response = Response(json.dumps({"detail": message}), status_code=401, media_type="application/json",
                                headers={"WWW-Authenticate": 'Bearer realm="latentmap"'})
        await response(scope, receive, send)


# ----- the login page ---------------------------------------------------------------------------
router = APIRouter(tags=["login"], include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a local path: never another site (`//host`, `https://...`) or a scheme (`javascript:`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, next_path: str, error: str | None, status_code: int) -> HTMLResponse:
    from app.routes import pages  # the dashboard's template environment and shared page context

    settings = request.app.dependency_overrides.get(get_settings, get_settings)()
    context = {
        "request": request, "page": "login", "title": "Log in",
        "plotly_url": "", "css_version": pages._static_version("css/app.css"),
        "next": next_path, "error": error, "token_required": bool(settings.token),
    }
    return pages.templates.TemplateResponse(request, "login.html", context, status_code=status_code)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:  # noqa: A002 - the query name
    return _login_page(request, _safe_next(next), None, 200)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/") -> Response:  # noqa: A002
    settings = request.app.dependency_overrides.get(get_settings, get_settings)()
    target = _safe_next(next)
    if not settings.token:
        return RedirectResponse(target, status_code=303)
    if not token_matches(token, settings.token):
        return _login_page(request, target, "That token is not this server's token (LATENTMAP_TOKEN).", 401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE_NAME, session_value(settings.token), max_age=COOKIE_MAX_AGE, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


def install_security(app: FastAPI) -> None:
    """Add the token middleware and the login/logout routes to `app`."""
    app.add_middleware(TokenMiddleware, fastapi_app=app)
    app.include_router(router)
