"""The request side: a Responses request checked, and translated to chat completions.

See the package docstring for what translates and what gets a 400.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequest
from ..prompting import apply_limits

__all__ = ["check", "new_id", "to_chat", "with_limits"]

#: request fields that need the server to keep state, and what they ask for
_STATEFUL: dict[str, str] = {
    "previous_response_id": "continuing a stored response",
    "conversation": "a stored conversation",
    "prompt": "a stored prompt template",
    "context_management": "server-side context compaction",
}
#: Responses fields that only tune OpenAI's service: dropped, there is nothing to do
_DROPPED = frozenset(
    {
        "include", "max_tool_calls", "metadata", "prompt_cache_key", "prompt_cache_retention",
        "prompt_cache_options", "reasoning", "safety_identifier", "service_tier", "store",
        "background", "truncation", "top_logprobs", "moderation", "access_programs",
        "background_options", "stream_options", "image",
    }
)  # fmt: skip
#: Responses fields translated to chat fields here
_TRANSLATED = frozenset(
    {
        "model", "input", "instructions", "max_output_tokens", "temperature", "top_p",
        "parallel_tool_calls", "tools", "tool_choice", "text", "stream", "user",
    }
)  # fmt: skip
_ROLES = frozenset({"user", "system", "developer", "assistant"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# -- the request --------------------------------------------------------------------------------


def check(payload: Mapping[str, Any]) -> None:
    """400 for what the proxy can't serve (named in `param`); otherwise the request
    translates (:func:`to_chat` raises for malformed items)."""
    for field, what in _STATEFUL.items():
        if payload.get(field) is not None:
            raise InvalidRequest(
                f"{field!r} needs {what}, which variant-proxy does not keep: it serves the "
                "Responses API statelessly; send the whole conversation in 'input'",
                param=field,
            )
    if payload.get("store") is True:
        raise InvalidRequest(
            "'store': true asks the server to keep the response, which variant-proxy "
            "does not do; send 'store': false (or leave it out)",
            param="store",
        )
    if payload.get("background") is True:
        raise InvalidRequest(
            "'background': true needs responses kept to poll, which variant-proxy does "
            "not do; stream the response instead",
            param="background",
        )
    to_chat(payload)


def to_chat(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The chat completions request for a Responses request (400 for what doesn't translate)."""
    out: dict[str, Any] = {
        k: v for k, v in payload.items() if k not in _TRANSLATED and k not in _DROPPED
    }
    out = {k: v for k, v in out.items() if k not in _STATEFUL}
    out["model"] = payload.get("model")
    out["messages"] = _messages(payload)
    for key in ("temperature", "top_p", "parallel_tool_calls", "user"):
        if payload.get(key) is not None:
            out[key] = payload[key]
    if payload.get("max_output_tokens") is not None:
        out["max_tokens"] = payload["max_output_tokens"]
    if payload.get("stream"):
        # the usage chunk is what response.completed reports as usage
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    if payload.get("tools"):
        out["tools"] = _tools(payload["tools"])
    choice = payload.get("tool_choice")
    if choice is not None:
        out["tool_choice"] = _tool_choice(choice)
    fmt = _response_format(payload.get("text"))
    if fmt is not None:
        out["response_format"] = fmt
    return out


def _messages(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    instructions = payload.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest("instructions must be a string", param="instructions")
    if instructions:
        out.append({"role": "system", "content": instructions})
    items = payload.get("input")
    if isinstance(items, str):
        out.append({"role": "user", "content": items})
        return out
    if not isinstance(items, list) or not items:
        raise InvalidRequest(
            "input must be a string or a non-empty array of input items", param="input"
        )
    for i, item in enumerate(items):
        _item(out, item, f"input[{i}]")
    if not any(m["role"] != "system" for m in out):
        raise InvalidRequest("input has no message for the model to answer", param="input")
    return out


def _item(out: list[dict[str, Any]], item: Any, where: str) -> None:
    """Append one input item to the chat messages `out`."""
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object", param=where)
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in _ROLES:
            raise InvalidRequest(
                f"{where}.role must be one of {', '.join(sorted(_ROLES))}", param=f"{where}.role"
            )
        # chat templates of local models know `system`, not always OpenAI's `developer`
        role = "system" if role == "developer" else role
        out.append({"role": role, "content": _content(item.get("content"), f"{where}.content")})
    elif kind == "function_call":
        call = {
            "id": _string(item, "call_id", where),
            "type": "function",
            "function": {
                "name": _string(item, "name", where),
                "arguments": _string(item, "arguments", where),
            },
        }
        last = out[-1] if out else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)  # parallel calls: one turn
        else:
            out.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else _content(output, f"{where}.output")
        call_id = _string(item, "call_id", where)
        out.append({"role": "tool", "tool_call_id": call_id, "content": text})
    elif kind == "reasoning":
        return  # the model's own earlier reasoning: not sent back to a chat model
    elif kind == "item_reference":
        raise InvalidRequest(
            f"{where}: an item_reference names a stored item, which variant-proxy does not "
            "keep; send the item itself",
            param=where,
        )
    else:
        raise InvalidRequest(
            f"{where}: input items of type {str(kind)[:40]!r} are not supported (message, "
            "function_call, function_call_output and reasoning are)",
            param=f"{where}.type",
        )


def _string(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(f"{where}.{key} must be a string", param=f"{where}.{key}")
    return value


def _content(content: Any, where: str) -> Any:
    """A message's content for chat: a string, or chat parts (one string if all text)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or an array of parts", param=where)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT_PARTS:
            parts.append({"type": "text", "text": _string(part, "text", at)})
        elif kind == "refusal":
            parts.append({"type": "text", "text": _string(part, "refusal", at)})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            url: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail") in ("low", "high", "auto"):
                url["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": url})
        else:
            raise InvalidRequest(
                f"{at}: content parts of type {str(kind)[:40]!r} are not supported (input_text, "
                "output_text, refusal and input_image with an image_url are; uploaded files "
                "need OpenAI's file store)",
                param=at,
            )
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be an array", param="tools")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise InvalidRequest(
                f"tools[{i}]: built-in tools ({str(kind)[:40]!r}) run on OpenAI's servers; "
                "variant-proxy serves function tools only",
                param=f"tools[{i}].type",
            )
        function: dict[str, Any] = {"name": _string(tool, "name", f"tools[{i}]")}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": _string(choice, "name", "tool_choice")}}
    raise InvalidRequest(
        "tool_choice must be 'auto', 'none', 'required' or a function "
        "({'type': 'function', 'name': ...}); built-in tools are not served",
        param="tool_choice",
    )


def _response_format(text: Any) -> dict[str, Any] | None:
    if text is None:
        return None
    fmt = text.get("format") if isinstance(text, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema" and isinstance(fmt, dict):
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest(
        "text.format must be of type text, json_object or json_schema", param="text.format"
    )


def with_limits(
    payload: dict[str, Any], defaults: Mapping[str, Any], max_tokens_cap: int | None
) -> dict[str, Any]:
    """A Responses request sent as is, with a variant's defaults and token cap applied
    (`prompting.apply_limits`; the limit is `max_output_tokens` here). `payload` itself
    when nothing changes."""
    if not defaults and max_tokens_cap is None:
        return payload
    view = {k: v for k, v in payload.items() if k != "max_output_tokens"}
    if payload.get("max_output_tokens") is not None:
        view["max_tokens"] = payload["max_output_tokens"]
    limited, changed = apply_limits(view, defaults, max_tokens_cap)
    if not changed:
        return payload
    out = {k: v for k, v in limited.items() if k not in ("max_tokens", "max_completion_tokens")}
    limit = limited.get("max_tokens", limited.get("max_completion_tokens"))
    if limit is not None:
        out["max_output_tokens"] = limit
    return out
