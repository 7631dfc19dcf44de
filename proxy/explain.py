"""Where would this request go, and why? One answer for `explain` and `/route/explain`.

Both read a request body, parse it as the proxy would and return the
decision as JSON, sending nothing to any backend. The endpoint is
*strict* (a running proxy: the path must be one it serves, a body must
name its model, an unknown model is a 404 as a real request would get)
or *lenient* (the CLI, for corpora and logs: short endpoint names like
`chat` or `/completions`, a body without `model` explained as `auto`, an
unknown model explained as `auto` with a warning that a real request would
get 404).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from .errors import InvalidRequest, ModelNotFound
from .routing import Decision
from .runtime import PATH_TO_ENDPOINT, parse_payload

__all__ = ["endpoint_of", "explain"]


def endpoint_of(path: str, *, lenient: bool = False) -> str:
    """The endpoint name for a path; lenient also takes `chat`, `/completions`, …"""
    clean = path
    if lenient:
        clean = "/" + path.strip().strip("/")
        if not clean.startswith("/v1/"):
            clean = "/v1" + clean
        if clean == "/v1/chat":
            clean = "/v1/chat/completions"
    endpoint = PATH_TO_ENDPOINT.get(clean)
    if endpoint is None:
        known = "" if lenient else f"; use one of {', '.join(PATH_TO_ENDPOINT)}"
        raise InvalidRequest(f"unknown endpoint {path!r}{known}", param="endpoint")
    return endpoint


#: the decision for one parsed request (a runtime's, with whatever live state applies)
Decide = Callable[[Mapping[str, Any]], Decision]


def explain(
    endpoint: str,
    body: bytes | Mapping[str, Any],
    decide: Decide,
    *,
    lenient: bool = False,
) -> dict[str, Any]:
    """The decision for `body` sent to `endpoint`, as JSON. Raises `ProxyError` as the
    request would (strict), or for what can't be explained at all (lenient)."""
    if lenient:
        if isinstance(body, bytes):
            try:
                body = orjson.loads(body)
            except orjson.JSONDecodeError:
                pass
        if isinstance(body, Mapping) and "model" not in body:
            body = {**body, "model": "auto"}  # "where would auto send this?"
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    payload = parse_payload(endpoint, raw)
    try:
        return decide(payload).as_dict()
    except ModelNotFound as exc:
        if not lenient:
            raise
        # still show the classification, and say what the proxy would answer
        decision = decide({**payload, "model": "auto"}).as_dict()
        decision["warning"] = f"{exc.message} (a request would get 404; shown as auto)"
        return decision
