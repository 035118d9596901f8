"""Who may talk to `sam2 app`: an ASGI middleware in front of every route.

* Bound to a loopback address (the default, 127.0.0.1), the app needs no token, but the Host
  header must name a loopback address (DNS rebinding: a page of evil.example resolving its name
  to 127.0.0.1 sends `Host: evil.example`).
* Any other host= (0.0.0.0, a LAN address) needs the access token, random unless token= is given,
  printed in the URL as Jupyter does (`http://host:port/?token=...`). The first visit trades it for
  an HttpOnly, SameSite=Strict cookie; scripts may send `Authorization: token ...`.
* Requests that change something must come from the app's own page: an Origin (when sent) equal
  to the app's, `Sec-Fetch-Site` (when sent) same-origin or none, and a JSON body (a cross-site
  HTML form cannot send one without the browser asking first, and the app never says yes).
* Bodies are at most MAX_BODY bytes.

Refusals are one JSON line with a 4xx status, like every API error.
"""

import hmac
import ipaddress
import json
import secrets
from typing import Optional, Set
from urllib.parse import parse_qs

COOKIE = "sam2app_token"
MAX_BODY = 1 << 20  # 1 MiB: a request is a click, a box or a few ids
SAFE = {"GET", "HEAD", "OPTIONS"}
HEADERS = [  # on every response: the page runs only its own files, in no one else's frame
    (b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; script-src 'self'; "
                                 b"style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                                 b"form-action 'none'"),
    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


async def send_json(send, status: int, body: dict, headers=()) -> None:
    data = (json.dumps(body) + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


class Guard:
    """ASGI middleware: Host, Origin, token and body-size checks (see the module docstring)."""

    def __init__(self, app, *, host: str, port: int, token: Optional[str]):
        self.app, self.token, self.port = app, token, port
        names = {"127.0.0.1", "localhost", "[::1]"} if is_loopback(host) else {host, f"[{host}]"}
        self.any_host = not is_loopback(host) and host in ("0.0.0.0", "::", "")
        self.hosts: Set[str] = {f"{n}:{port}" for n in names} | ({"localhost", "127.0.0.1"} if port == 80 else set())

    def host_ok(self, host: str) -> bool:
        return host in self.hosts or (self.any_host and self.token is not None and bool(host))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not self.host_ok(host):
            return await send_json(send, 403, {"error": f"host {host[:80]!r} is not this app's address"})
        method = scope["method"]
        site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        if method not in SAFE or scope["path"].startswith("/api/"):
            if site is not None and site not in ("same-origin", "none"):
                return await send_json(send, 403, {"error": f"cross-site request refused ({site})"})
            if origin is not None and origin != f"http://{host}":
                return await send_json(send, 403, {"error": f"origin {origin[:80]!r} is not this app"})
        if method not in SAFE and not headers.get("content-type", "").startswith("application/json"):
            return await send_json(send, 415, {"error": "send the request body as application/json"})
        set_cookie = ()
        if self.token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [None])[0]
            cookie = _cookie(headers.get("cookie", ""), COOKIE)
            auth = headers.get("authorization", "")
            bearer = auth[6:].strip() if auth.lower().startswith("token ") else None
            ok = any(t is not None and hmac.compare_digest(t.encode(), self.token.encode())
                     for t in (given, cookie, bearer))
            if not ok:
                return await send_json(send, 403, {"error": "this app needs its access token: open the URL "
                                                            "printed by `sam2 app` (.../?token=...)"})
            if given is not None and cookie != self.token:
                set_cookie = ((b"set-cookie", f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()),)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return await send_json(send, 413, {"error": f"the request body is over {MAX_BODY} bytes"})

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS, *set_cookie]}
            await send(message)
        await self.app(scope, receive, send_with_cookie)  # bodies without a length: the routes count


def _cookie(header: str, name: str) -> Optional[str]:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None
