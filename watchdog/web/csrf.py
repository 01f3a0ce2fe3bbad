"""Cross-site request forgery: every form of the dashboard is posted with a token bound to its
session, and a post that says it comes from another origin is refused.

- The token is HMAC-SHA256 of the session id (signed in: the id inside the session cookie;
  the sign-in form: a random value in its own HttpOnly cookie) with the dashboard's key. A page
  on another site can neither read it nor compute it.
- `Origin` (else `Referer`) when present must be this server's origin, as the request reached
  it (scheme and Host) or as `http.public_url` names it; `Sec-Fetch-Site: cross-site` is
  refused too. Browsers send these with every form post; a post without any of them still
  needs the token.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

from watchdog.web.auth import mac

FIELD = "csrf"


def token(key: bytes, binding: str) -> str:
    return mac(key, "csrf", binding)


def valid_token(key: bytes, binding: str | None, given: str | None) -> bool:
    if not binding or not given:
        return False
    return hmac.compare_digest(given, token(key, binding))


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def same_origin(request: Request, public_url: str | None) -> bool:
    """Whether the request comes from one of our own pages (or does not say where from)."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return False
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if claimed is None:
        return True
    mine = {_origin(f"{request.url.scheme}://{request.headers.get('host', '')}")}
    if public_url:
        mine.add(_origin(public_url))
    mine.discard(None)
    return _origin(claimed) in mine
