"""`variant-proxy explain`: how requests would be routed, with nothing sent.

Reads one request body (or JSON lines of `{"endpoint": ..., "body": ...}`) and prints
the routing decision the running proxy would make for it. A body without a model is
explained as `auto`; an unknown model is explained as `auto` with a warning.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

import orjson

from ..errors import InvalidRequest, ProxyError, render
from ..explain import endpoint_of, explain
from ..runtime import Runtime
from ..settings import Settings
from ..sticky import TaskMemory
from ._common import load_or_report

__all__ = ["cmd_explain"]


def _explain_one(rt: Runtime, memory: TaskMemory, path: str, body: Any) -> dict[str, Any]:
    """The decision, or the error a request would get, with its HTTP status. `memory`
    carries task stickiness from one line to the next, as a running proxy would."""
    try:
        endpoint = endpoint_of(path, lenient=True)
        return explain(
            endpoint,
            body,
            lambda payload: rt.decide(endpoint, payload, memory=memory),
            lenient=True,
        )
    except ProxyError as exc:
        return _error(exc)


def _error(exc: ProxyError) -> dict[str, Any]:
    status, _, body = render(exc)
    result: dict[str, Any] = orjson.loads(body)
    result["status"] = status
    return result


def cmd_explain(
    settings: Settings, endpoint: str, jsonl: bool, inp: TextIO, out: TextIO, err: TextIO
) -> int:
    cfg = load_or_report(settings.config, err)
    if cfg is None:
        return 1
    rt = Runtime(cfg, str(settings.config), {n: 0 for n in cfg.backends})
    memory = TaskMemory()
    if not jsonl:
        data = inp.read().encode()
        result = _explain_one(rt, memory, endpoint, data)
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
                rt, memory, str(item.get("endpoint", "/v1/chat/completions")), item.get("body")
            )
        except (orjson.JSONDecodeError, ValueError) as exc:
            result = _error(InvalidRequest(f"line {lineno}: {exc}", code="invalid_json"))
        if "error" in result:
            failures += 1
        out.write(orjson.dumps(result).decode() + "\n")
    return 1 if failures else 0
