"""Browser-origin defence: which HTTP requests a web page may make to the proxy.

A daemon on 127.0.0.1 without API keys is reachable by every web page the user
opens: a page can POST a `text/plain` or form body to it (no CORS preflight
for those), and a DNS-rebinding page (`rebind.evil` re-resolved to 127.0.0.1)
can even read the answers, because to the browser they are same-origin. The
rules here close both, and leave curl, SDKs and editors (which send no
`Origin` and name the proxy's own address in `Host`) untouched:

* **Host allowlist** (against rebinding): `Host` must name a loopback name or
  address, the address the proxy is bound to, the local address the
  connection arrived at (an IP: a rebinding page always uses its own DNS
  name), or a name in `server.allowed_hosts` (`*`: any, unsafe). 421.
* **No cross-origin browser requests**: an `Origin` that is neither the
  proxy's own (same host and port as `Host`, and an allowed host) nor listed
  in `server.cors_origins`, or `Sec-Fetch-Site: cross-site`/`same-site` from
  an unlisted origin, is refused whatever the method. 403.
* **JSON bodies only**: a POST to an endpoint that takes a body must say
  `Content-Type: application/json`; the content types a page can send
  without a preflight (`text/plain`, forms, none) are refused. A POST with
  no body at all (`/admin/reload`) needs no type: there is nothing to type.
  415.
* **Opt-in CORS**: for the origins in `server.cors_origins` preflights are
  answered here and responses carry `Access-Control-Allow-Origin`.

This module is pure: header pairs and a few strings in, a `Verdict` out (no
starlette, no httpx), so the rules are tested as tables; `ProxyApp.__call__`
applies the verdict to every HTTP request before anything else runs. A
request that passes costs one walk over its header list.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ForbiddenOrigin, MisdirectedHost, RequestError, UnsupportedMediaType

__all__ = [
    "CORS_HEADERS",
    "PASS",
    "OriginPolicy",
    "Verdict",
    "is_loopback",
    "normalize_origin",
    "open_listener_problem",
    "preflight_headers",
    "response_headers",
    "split_host",
]

#: request headers a browser client may send (the preflight's allow list)
CORS_HEADERS = b"authorization, content-type, x-request-id"
_METHODS = b"GET, POST, OPTIONS"
#: response headers a browser client may read
_EXPOSE = b"x-request-id, x-route-variant, x-route-class, x-route-reason, x-route-fallback-from"
_WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", ""})
#: the request headers the rules read, by position in `OriginPolicy.check`
_READ = {
    name: i
    for i, name in enumerate(
        (
            b"host",
            b"origin",
            b"sec-fetch-site",
            b"content-type",
            b"content-length",
            b"transfer-encoding",
            b"access-control-request-method",
        )
    )
}
_EMPTY = (b"0", b"")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one request: refuse it (`error`), answer a CORS preflight
    (`preflight`), or serve it, adding CORS headers for `cors_origin` when set."""

    error: RequestError | None = None
    cors_origin: bytes | None = None
    preflight: bool = False


#: the verdict of almost every request (no allocation on the hot path)
PASS = Verdict()


def is_loopback(host: str) -> bool:
    """`localhost`, any 127.x address or ::1 (brackets and case ignored)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def open_listener_problem(host: str, *, keys: bool, allow_remote: bool) -> str | None:
    """Why listening on `host` with these keys is unsafe, or None when it is fine.

    The one rule for `serve` at startup and for every reload: a non-loopback
    listener needs API keys unless the operator said something else guards it.
    """
    if keys or allow_remote or is_loopback(host):
        return None
    return (
        f"refusing to listen on {host} without API keys: anyone who can reach it could "
        "use your models. Set server.auth.api_keys_env (or api_keys_file), or pass "
        "--allow-remote / VARIANT_PROXY_ALLOW_REMOTE=1 if something else guards it."
    )


def split_host(value: str) -> tuple[str, int | None]:
    """`Host`-style `name[:port]` → (lower-case name without brackets, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, sep, port = value.rpartition(":")
        if not sep or ":" in name:  # no port, or a bare IPv6 address
            name, port = value, ""
    return name, int(port) if port.isdigit() else None


def normalize_origin(value: str) -> str | None:
    """`scheme://host[:port]`, lower-cased, default port dropped; None if not an origin."""
    scheme, sep, rest = value.strip().lower().rstrip("/").partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest or "@" in rest:
        return None
    name, port = split_host(rest)
    if not name:
        return None
    shown = f"[{name}]" if ":" in name else name
    if port is None or port == _default_port(scheme):
        return f"{scheme}://{shown}"
    return f"{scheme}://{shown}:{port}"


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


class OriginPolicy:
    """The rules above, compiled from the server config and the bound address."""

    def __init__(
        self,
        *,
        allowed_hosts: Iterable[str] = (),
        cors_origins: Iterable[str] = (),
        listen_host: str | None = None,
        body_paths: Iterable[str] = (),
    ) -> None:
        hosts = {split_host(h)[0] for h in allowed_hosts}
        self.any_host = "*" in hosts
        if listen_host and listen_host.strip("[]") not in _WILDCARD_ADDRESSES:
            hosts.add(split_host(listen_host)[0])
        self.hosts = frozenset(hosts - {"*"})
        self.cors = frozenset(o for o in map(normalize_origin, cors_origins) if o is not None)
        self.body_paths = frozenset(body_paths)
        #: `Host` values seen → allowed: clients use a handful, so the hot path skips
        #: parsing; bounded, so a flood of made-up names can't grow it
        self._hosts_seen: dict[bytes, str] = {}

    def host_allowed(self, name: str, local: str | None) -> bool:
        """Whether a `Host` name (no port, lower case) names this proxy."""
        return (
            self.any_host
            or name in self.hosts
            or (local is not None and name == local.strip("[]").lower())
            or is_loopback(name)
        )

    def check(
        self,
        method: str,
        path: str,
        headers: Iterable[tuple[bytes, bytes]],
        local: str | None = None,
    ) -> Verdict:
        """The verdict for one request. `local` is the address the connection arrived at."""
        found: list[bytes | None] = [None] * len(_READ)
        slot = _READ.get
        for key, value in headers:  # one dict probe per header: the cheapest walk
            i = slot(key)
            if i is not None:
                found[i] = value
        host, origin, fetch_site, ctype, length, chunked, preflight = found
        has_body = chunked is not None or (length is not None and length.strip() not in _EMPTY)
        if host is not None and not self._host_ok(host, local):
            host_name = split_host(host.decode("latin-1"))[0]
            return Verdict(
                MisdirectedHost(
                    f"the Host header {host_name[:200]!r} does not name this proxy (a "
                    "DNS-rebinding defence): reach it by its address, or add the name to "
                    "server.allowed_hosts"
                )
            )
        if origin is None and fetch_site is None:
            return self._body_verdict(method, path, ctype, has_body, None)
        host_name, host_port = split_host(host.decode("latin-1")) if host else ("", None)
        allowed = self._cors_origin(origin)
        if allowed is None and not self._same_origin(origin, fetch_site, host_name, host_port):
            shown = origin[:200].decode("latin-1") if origin is not None else "another site"
            return Verdict(
                ForbiddenOrigin(
                    f"cross-origin request from {shown!r} refused (a browser page may not use "
                    "this proxy): list the page's origin in server.cors_origins to allow it"
                )
            )
        if preflight is not None and method == "OPTIONS" and allowed is not None:
            return Verdict(cors_origin=allowed, preflight=True)
        return self._body_verdict(method, path, ctype, has_body, allowed)

    def _host_ok(self, host: bytes, local: str | None) -> bool:
        # cached per Host value: "" when allowed whatever the connection, else its name
        name = self._hosts_seen.get(host)
        if name is None:
            name = split_host(host.decode("latin-1"))[0]
            if self.host_allowed(name, None):
                name = ""
            if len(self._hosts_seen) < 256:
                self._hosts_seen[host] = name
        return not name or (local is not None and name == local.strip("[]").lower())

    def _cors_origin(self, origin: bytes | None) -> bytes | None:
        """The Origin header as sent, when it is listed in `server.cors_origins`."""
        if origin is None or not self.cors:
            return None
        return origin if normalize_origin(origin.decode("latin-1")) in self.cors else None

    def _same_origin(
        self, origin: bytes | None, fetch_site: bytes | None, host: str, port: int | None
    ) -> bool:
        if fetch_site is not None and fetch_site.strip().lower() not in (b"same-origin", b"none"):
            return False  # cross-site, same-site (another port of localhost), or unknown
        if origin is None:
            return True  # Sec-Fetch-Site said same-origin or none (typed in the address bar)
        normal = normalize_origin(origin.decode("latin-1"))
        if normal is None or not host:
            return False  # "null" (sandboxed frames, file://) or no Host to compare with
        scheme, _, rest = normal.partition("://")
        name, origin_port = split_host(rest)
        default = _default_port(scheme)
        return (
            name == host
            and (origin_port or default) == (port or default)
            and self.host_allowed(name, None)
        )

    def _body_verdict(
        self, method: str, path: str, ctype: bytes | None, has_body: bool, cors: bytes | None
    ) -> Verdict:
        if method == "POST" and path in self.body_paths and (has_body or ctype is not None):
            media = (ctype or b"").partition(b";")[0].strip().lower()
            if media != b"application/json":
                shown = media.decode("latin-1") if media else "none"
                return Verdict(
                    UnsupportedMediaType(
                        f"content type {shown!r} is not accepted: send the JSON body with "
                        "'Content-Type: application/json'"
                    ),
                    cors_origin=cors,
                )
        return PASS if cors is None else Verdict(cors_origin=cors)


def preflight_headers(origin: bytes) -> list[tuple[bytes, bytes]]:
    """The answer to an allowed origin's CORS preflight (204)."""
    return [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-methods", _METHODS),
        (b"access-control-allow-headers", CORS_HEADERS),
        (b"access-control-max-age", b"600"),
        (b"vary", b"Origin"),
        (b"content-length", b"0"),
    ]


def response_headers(origin: bytes) -> list[tuple[bytes, bytes]]:
    """Added to every response to an allowed origin's request."""
    return [
        (b"access-control-allow-origin", origin),
        (b"access-control-expose-headers", _EXPOSE),
        (b"vary", b"Origin"),
    ]
