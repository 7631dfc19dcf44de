"""`variant-proxy explain`: how requests would be routed, with nothing sent.

Reads one request body (or JSON lines of `{"endpoint": ..., "body": ...}`) and prints
the routing decision the running proxy would make for it. A body without a model is
explained as `auto`; an unknown model is explained as `auto` with a warning.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, TextIO

import orjson

from ..errors import ModelNotFound, ProxyError, status_of
from ..settings import Settings
from ._common import load_or_report

__all__ = ["cmd_explain"]


def _endpoint_of(path: str) -> str | None:
    """`/v1/chat/completions`, `/chat/completions`, `chat`, … → the endpoint name."""
    from ..runtime import PATH_TO_ENDPOINT

    clean = "/" + path.strip().strip("/")
    if not clean.startswith("/v1/"):
        clean = "/v1" + clean
    if clean == "/v1/chat":
        clean = "/v1/chat/completions"
    return PATH_TO_ENDPOINT.get(clean)


def _explain_one(rt: Any, path: str, body: Any) -> dict[str, Any]:
    from ..runtime import parse_payload

    endpoint = _endpoint_of(path)
    if endpoint is None:
        return {"error": {"message": f"unknown endpoint {path!r}", "code": "invalid_request"}}
    try:
        if isinstance(body, bytes):
            with contextlib.suppress(orjson.JSONDecodeError):
                body = orjson.loads(body)
        if isinstance(body, dict) and "model" not in body:
            body = {**body, "model": "auto"}  # explain answers "where would auto send this?"
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        payload = parse_payload(endpoint, raw)
        try:
            decision: dict[str, Any] = rt.decide(endpoint, payload).as_dict()
        except ModelNotFound as exc:
            # still show the classification, and say what the proxy would answer
            decision = rt.decide(endpoint, {**payload, "model": "auto"}).as_dict()
            decision["warning"] = f"{exc.message} (a request would get 404; shown as auto)"
        return decision
    except ProxyError as exc:
        result = exc.body()
        result["status"] = status_of(exc)
        return result


def cmd_explain(
    settings: Settings, endpoint: str, jsonl: bool, inp: TextIO, out: TextIO, err: TextIO
) -> int:
    cfg = load_or_report(settings.config, err)
    if cfg is None:
        return 1
    from ..runtime import Runtime

    rt = Runtime(cfg, str(settings.config), {n: 0 for n in cfg.backends})
    if not jsonl:
        data = inp.read().encode()
        result = _explain_one(rt, endpoint, data)
        print(json.dumps(result, indent=2, ensure_ascii=False), file=out)
        return 1 if "error" in result else 0
    failures = 0
    for lineno, line in enumerate(inp, 1):
        line = line.strip()
        if not line:
            continue
        try:
            item = orjson.loads(line)
            if not isinstance(item, dict):
                raise ValueError("each line must be a JSON object")
            result = _explain_one(
                rt, str(item.get("endpoint", "/v1/chat/completions")), item.get("body")
            )
        except (orjson.JSONDecodeError, ValueError) as exc:
            result = {"error": {"message": f"line {lineno}: {exc}", "code": "invalid_json"}}
        if "error" in result:
            failures += 1
        out.write(orjson.dumps(result).decode() + "\n")
    return 1 if failures else 0
