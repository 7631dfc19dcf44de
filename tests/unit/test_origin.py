"""The browser-origin rules as tables: Host allowlist, Origin/Sec-Fetch-Site, JSON bodies,
CORS verdicts, and the one rule for listening without keys."""

from __future__ import annotations

import pytest

from proxy.errors import (
    ForbiddenOrigin,
    MisdirectedHost,
    RequestError,
    UnsupportedMediaType,
    render,
)
from proxy.origin import (
    PASS,
    OriginPolicy,
    Verdict,
    is_loopback,
    normalize_origin,
    open_listener_problem,
    preflight_headers,
    split_host,
)

CHAT = "/v1/chat/completions"
BODY_PATHS = [CHAT, "/v1/completions", "/v1/embeddings", "/route/explain", "/admin/reload"]
JSON = {"content-type": "application/json", "content-length": "20"}


def policy(**kw: object) -> OriginPolicy:
    return OriginPolicy(body_paths=BODY_PATHS, **kw)  # type: ignore[arg-type]


def check(
    headers: dict[str, str],
    method: str = "GET",
    path: str = "/v1/models",
    local: str | None = "127.0.0.1",
    **kw: object,
) -> Verdict:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    return policy(**kw).check(method, path, raw, local)


def kind(verdict: Verdict) -> type[RequestError] | None:
    return None if verdict.error is None else type(verdict.error)


# -- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("localhost.evil", False),
        ("evil", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("localhost:8780", ("localhost", 8780)),
        ("LocalHost", ("localhost", None)),
        ("[::1]:8780", ("::1", 8780)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("127.0.0.1:", ("127.0.0.1", None)),
        ("rebind.evil:80", ("rebind.evil", 80)),
    ],
)
def test_split_host(value: str, expected: tuple[str, int | None]) -> None:
    assert split_host(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://localhost:3000", "http://localhost:3000"),
        ("HTTP://LocalHost:3000/", "http://localhost:3000"),
        ("http://localhost:80", "http://localhost"),
        ("https://app.example:443", "https://app.example"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("null", None),
        ("file://", None),
        ("ftp://x", None),
        ("http://x/path", None),
        ("http://user@x", None),
        ("localhost:3000", None),
    ],
)
def test_normalize_origin(value: str, expected: str | None) -> None:
    assert normalize_origin(value) == expected


@pytest.mark.parametrize(
    ("host", "keys", "allow_remote", "refused"),
    [
        ("127.0.0.1", False, False, False),
        ("localhost", False, False, False),
        ("::1", False, False, False),
        ("0.0.0.0", False, False, True),
        ("::", False, False, True),
        ("192.168.1.5", False, False, True),
        ("0.0.0.0", True, False, False),
        ("0.0.0.0", False, True, False),
    ],
)
def test_open_listener_problem(host: str, keys: bool, allow_remote: bool, refused: bool) -> None:
    problem = open_listener_problem(host, keys=keys, allow_remote=allow_remote)
    assert (problem is not None) is refused
    if problem:
        assert host in problem and "api_keys_env" in problem and "--allow-remote" in problem


# -- Host allowlist ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "kw", "allowed"),
    [
        ("127.0.0.1:8780", {}, True),
        ("localhost:8780", {}, True),
        ("LOCALHOST", {}, True),
        ("[::1]:8780", {}, True),
        ("127.9.9.9", {}, True),
        ("rebind.evil", {}, False),
        ("rebind.evil:8780", {}, False),
        ("localhost.rebind.evil", {}, False),
        ("192.168.1.5:8780", {}, False),
        ("192.168.1.5:8780", {"listen_host": "192.168.1.5"}, True),
        ("proxy.lan:8780", {"allowed_hosts": ["proxy.lan"]}, True),
        ("PROXY.LAN", {"allowed_hosts": ["Proxy.Lan:9999"]}, True),
        ("other.lan", {"allowed_hosts": ["proxy.lan"]}, False),
        ("anything.at.all", {"allowed_hosts": ["*"]}, True),
        ("0.0.0.0", {"listen_host": "0.0.0.0"}, False),  # a wildcard bind is no name
    ],
)
def test_host_allowlist(host: str, kw: dict[str, object], allowed: bool) -> None:
    verdict = check({"host": host}, local=None, **kw)
    assert kind(verdict) is (None if allowed else MisdirectedHost)
    if not allowed:
        assert verdict.error is not None and "server.allowed_hosts" in verdict.error.message


@pytest.mark.parametrize(
    ("host", "local", "allowed"),
    [
        ("10.0.0.7:8780", "10.0.0.7", True),  # a 0.0.0.0 bind reached on its LAN address
        ("[fe80::1]:8780", "fe80::1", True),
        ("10.0.0.8:8780", "10.0.0.7", False),
        ("rebind.evil", "10.0.0.7", False),
    ],
)
def test_host_may_name_the_local_address_of_the_connection(
    host: str, local: str, allowed: bool
) -> None:
    assert kind(check({"host": host}, local=local)) is (None if allowed else MisdirectedHost)


def test_no_host_header_passes() -> None:  # HTTP/1.0 clients; a browser always sends one
    assert check({}) is PASS


# -- cross-origin browser requests -----------------------------------------------------------

H = "127.0.0.1:8780"


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({"host": H}, False),  # curl, SDKs, editors
        ({"host": H, "origin": "http://127.0.0.1:8780"}, False),  # same origin
        ({"host": "localhost:8780", "origin": "http://LOCALHOST:8780"}, False),
        ({"host": "localhost", "origin": "http://localhost:80"}, False),
        # the scheme is not compared: behind a TLS terminator the page is https and the
        # proxy's own scope says http; nothing else can serve a page on the same host:port
        ({"host": "localhost", "origin": "https://localhost"}, False),
        ({"host": H, "origin": "http://127.0.0.1:8780", "sec-fetch-site": "same-origin"}, False),
        ({"host": H, "sec-fetch-site": "none"}, False),  # typed in the address bar
        ({"host": H, "sec-fetch-site": "same-origin"}, False),
        ({"host": H, "origin": "http://evil.example"}, True),
        ({"host": H, "origin": "http://127.0.0.1:3000"}, True),  # another local port
        ({"host": H, "origin": "null"}, True),  # sandboxed frame, file://
        ({"host": H, "origin": ""}, True),
        ({"host": H, "sec-fetch-site": "cross-site"}, True),  # <img>, no-cors GET
        ({"host": H, "sec-fetch-site": "same-site"}, True),
        ({"host": H, "sec-fetch-site": "bogus"}, True),
        ({"host": H, "origin": "http://127.0.0.1:8780", "sec-fetch-site": "cross-site"}, True),
        ({"origin": "http://127.0.0.1:8780"}, True),  # nothing to be the same as
        # rebinding: the Host check answers first
        ({"host": "rebind.evil:8780", "origin": "http://rebind.evil:8780"}, True),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS", "PUT"])
def test_cross_origin_refused_whatever_the_method(
    headers: dict[str, str], refused: bool, method: str
) -> None:
    body = JSON if method == "POST" else {}
    verdict = check({**headers, **body}, method=method, path=CHAT if body else "/v1/models")
    if not refused:
        assert verdict is PASS
    else:
        assert kind(verdict) in (ForbiddenOrigin, MisdirectedHost)
        assert verdict.cors_origin is None


def test_refusal_names_the_setting() -> None:
    verdict = check({"host": H, "origin": "http://evil.example"})
    assert isinstance(verdict.error, ForbiddenOrigin)
    assert "server.cors_origins" in verdict.error.message
    assert "http://evil.example" in verdict.error.message
    status, _, body = render(verdict.error)
    assert status == 403 and b'"code":"forbidden_origin"' in body


def test_same_origin_needs_an_allowed_host() -> None:
    # the rebinding page's own origin matches its Host, but the Host is not this proxy
    assert kind(check({"host": "evil:1", "origin": "http://evil:1"})) is MisdirectedHost
    ok = {"host": "evil:1", "origin": "http://evil:1"}
    assert check(ok, allowed_hosts=["evil"]) is PASS


# -- JSON bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        (JSON, False),
        ({"content-type": "application/json; charset=utf-8", "content-length": "2"}, False),
        ({"content-type": "Application/JSON", "content-length": "2"}, False),
        ({"content-type": "text/plain", "content-length": "2"}, True),
        ({"content-type": "text/plain;charset=UTF-8", "content-length": "2"}, True),
        ({"content-type": "application/x-www-form-urlencoded", "content-length": "2"}, True),
        ({"content-type": "multipart/form-data; boundary=x", "content-length": "2"}, True),
        ({"content-type": "application/jsonx", "content-length": "2"}, True),
        ({"content-type": "", "content-length": "2"}, True),
        ({"content-length": "2"}, True),  # a Blob body: no type at all
        ({"transfer-encoding": "chunked"}, True),
        ({"content-type": "text/plain", "content-length": "0"}, True),  # an empty form
        ({"content-length": "0"}, False),  # no body: nothing to type (curl -X POST)
        ({}, False),
    ],
)
@pytest.mark.parametrize("path", BODY_PATHS)
def test_post_bodies_must_be_json(headers: dict[str, str], refused: bool, path: str) -> None:
    verdict = check({"host": H, **headers}, method="POST", path=path)
    if refused:
        assert isinstance(verdict.error, UnsupportedMediaType)
        assert "application/json" in verdict.error.message
        assert render(verdict.error)[0] == 415
    else:
        assert verdict is PASS


@pytest.mark.parametrize(
    ("method", "path"), [("GET", CHAT), ("POST", "/nowhere"), ("POST", "/v1/models")]
)
def test_only_post_endpoints_that_take_a_body_check_the_type(method: str, path: str) -> None:
    # others keep their 404/405 from the router
    verdict = check({"host": H, "content-type": "text/plain", "content-length": "2"}, method, path)
    assert verdict is PASS


# -- CORS ------------------------------------------------------------------------------------

APP = "http://localhost:3000"


@pytest.mark.parametrize(
    ("headers", "method", "expected"),
    [
        # preflight of a listed origin: answered here
        (
            {"origin": APP, "access-control-request-method": "POST"},
            "OPTIONS",
            Verdict(cors_origin=APP.encode(), preflight=True),
        ),
        # an actual request of a listed origin, even from same-site / cross-site
        ({"origin": APP, **JSON}, "POST", Verdict(cors_origin=APP.encode())),
        ({"origin": APP, "sec-fetch-site": "same-site"}, "GET", Verdict(cors_origin=b"HTTP://x")),
        # an OPTIONS that is not a preflight goes on to the router (405)
        ({"origin": APP}, "OPTIONS", Verdict(cors_origin=APP.encode())),
        # still JSON only
        (
            {"origin": APP, "content-type": "text/plain", "content-length": "2"},
            "POST",
            Verdict(UnsupportedMediaType("x"), cors_origin=APP.encode()),
        ),
        # others: refused, preflight included
        (
            {"origin": "http://localhost:3001", "access-control-request-method": "POST"},
            "OPTIONS",
            Verdict(ForbiddenOrigin("x")),
        ),
        ({"origin": "http://evil.example", **JSON}, "POST", Verdict(ForbiddenOrigin("x"))),
    ],
)
def test_cors_verdicts(headers: dict[str, str], method: str, expected: Verdict) -> None:
    if headers.get("sec-fetch-site") == "same-site":
        headers = {**headers, "origin": "HTTP://LOCALHOST:3000"}  # echoed as sent
        expected = Verdict(cors_origin=b"HTTP://LOCALHOST:3000")
    verdict = check({"host": H, **headers}, method, CHAT, cors_origins=[APP + "/"])
    assert kind(verdict) is kind(expected)
    assert (verdict.cors_origin, verdict.preflight) == (expected.cors_origin, expected.preflight)


def test_cors_is_opt_in() -> None:
    verdict = check({"host": H, "origin": APP, "access-control-request-method": "POST"}, "OPTIONS")
    assert isinstance(verdict.error, ForbiddenOrigin)


def test_preflight_headers() -> None:
    headers = dict(preflight_headers(APP.encode()))
    assert headers[b"access-control-allow-origin"] == APP.encode()
    assert b"POST" in headers[b"access-control-allow-methods"]
    allowed = headers[b"access-control-allow-headers"]
    assert all(h in allowed for h in (b"authorization", b"content-type", b"x-request-id"))
    assert headers[b"vary"] == b"Origin"


def test_host_verdicts_are_cached_per_value_and_bounded() -> None:
    rules = policy()
    lan = [(b"host", b"10.0.0.7:8780")]
    # the same Host value, reached on different local addresses: not mixed up by the cache
    assert rules.check("GET", "/", lan, "10.0.0.7") is PASS
    assert isinstance(rules.check("GET", "/", lan, "10.0.0.8").error, MisdirectedHost)
    assert rules.check("GET", "/", lan, "10.0.0.7") is PASS
    for i in range(1000):  # a flood of made-up names
        made_up = [(b"host", b"x%d.rebind.evil" % i)]
        assert isinstance(rules.check("GET", "/", made_up, None).error, MisdirectedHost)
    assert len(rules._hosts_seen) <= 256
    assert rules.check("GET", "/", [(b"host", b"localhost:1")], None) is PASS
    assert isinstance(
        rules.check("GET", "/", [(b"host", b"x999.rebind.evil")]).error, MisdirectedHost
    )
