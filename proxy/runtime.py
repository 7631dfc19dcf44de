"""Everything derived from one config, and the pure request-side decisions.

`Runtime` is built once per config and never mutated: a reload builds a new
one and swaps it in, so a request in flight keeps the config it started
with. `parse_payload` checks only what routing needs; the rest of the body
is the backend's business.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, NoReturn

import orjson

from . import contextwindow, fim, ollamanative, prompting, rawjson, responses
from .adapt import Adaptation, UpstreamRequest
from .backends import HealthResult
from .breaker import CircuitBreaker
from .classify import Classification, Classifier, LazySignals, is_continuation
from .config import Backend, Breaker, RouterConfig, Timeouts
from .errors import (
    ContextLengthExceeded,
    InvalidRequest,
    ModelNotFound,
    Unavailable,
    UpstreamBusy,
)
from .limits import Limiter
from .routing import Decision, Eligibility, Needs, Ranker, Router
from .sticky import TaskMemory

__all__ = [
    "ENDPOINTS",
    "PATH_TO_ENDPOINT",
    "BackendState",
    "Runtime",
    "parse_payload",
    "wants_infill",
]

#: endpoint label → upstream path, and the body field each one requires.
ENDPOINTS: dict[str, tuple[str, str]] = {
    "chat": ("/v1/chat/completions", "messages"),
    "completions": ("/v1/completions", "prompt"),
    "embeddings": ("/v1/embeddings", "input"),
    "responses": ("/v1/responses", "input"),
}
PATH_TO_ENDPOINT = {path: name for name, (path, _) in ENDPOINTS.items()}


def parse_payload(endpoint: str, body: bytes) -> dict[str, Any]:
    """The request JSON, checked just enough to route it; the rest is the backend's business."""
    if not body:
        raise InvalidRequest("request body is empty; send a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object")
    _check_depth(payload)
    model = payload.get("model")
    if model is None:
        raise InvalidRequest("you must provide a model parameter", param="model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model must be a non-empty string", param="model")
    field = ENDPOINTS[endpoint][1]
    value = payload.get(field)
    if value is None:
        raise InvalidRequest(f"missing required parameter: {field!r}", param=field)
    if endpoint == "chat" and (not isinstance(value, list) or not value):
        raise InvalidRequest("messages must be a non-empty array", param="messages")
    stream = payload.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream must be a boolean", param="stream")
    if endpoint == "responses":
        responses.check(payload)  # stateful fields and built-in tools: a 400 naming them
    return payload


#: JSON nesting deeper than this is refused with 400: the body is written back out for the
#: backend, and orjson refuses to write more than 254 levels (a 500 before this limit)
MAX_JSON_DEPTH = 128
#: a run of this many digits may be an integer beyond 64 bits, which orjson reads as a float
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def _check_depth(payload: dict[str, Any]) -> None:
    """400 when arrays and objects nest deeper than `MAX_JSON_DEPTH`: an iterative walk
    over the containers only, microseconds for a chat (a request's text is in a few
    strings) and far less than the parse for any body (counting brackets in the bytes
    instead cost ~1 ms per MB, since `bytes.count` is not memchr)."""
    level: list[Any] = [payload]
    depth = 1
    while level:
        if depth > MAX_JSON_DEPTH:
            raise InvalidRequest(
                f"request body nests JSON arrays and objects more than {MAX_JSON_DEPTH} "
                "levels deep, the limit"
            )
        deeper: list[Any] = []
        for node in level:
            values = node.values() if isinstance(node, dict) else node
            # an empty container ends its branch: only non-empty ones go deeper
            deeper.extend(v for v in values if v and isinstance(v, dict | list))
        level = deeper
        depth += 1


def wants_infill(payload: Mapping[str, Any], prompt_fim: fim.PromptFim | None) -> bool:
    """A completion request with text after the cursor: a `suffix` or FIM markers."""
    if prompt_fim is None:
        return False
    suffix = payload.get("suffix")
    return isinstance(suffix, str) and bool(suffix) or prompt_fim.parts is not None


class BackendState:
    """Per-backend runtime state that outlives a config reload if the backend is unchanged."""

    def __init__(self, spec: Backend, breaker: Breaker) -> None:
        self.spec = spec
        self.breaker_spec = breaker
        self.breaker = CircuitBreaker(breaker.failures, breaker.cooldown, breaker.request_errors)
        self.limiter = Limiter(spec.max_concurrency, spec.max_queue, spec.queue_timeout)
        self.in_flight = 0
        self.health: HealthResult | None = None
        #: serving windows learned at probe time (`proxy.contextwindow`), by model
        self.windows: dict[str, contextwindow.Window] = {}
        #: the server's version, when its kind says it (quirks depend on it)
        self.version: str | None = None


class Runtime:
    """Everything derived from one config. Immutable once built; replaced on reload."""

    def __init__(
        self,
        cfg: RouterConfig,
        source: str,
        ports: Mapping[str, int],
        previous: Mapping[str, BackendState] | None = None,
    ) -> None:
        self.cfg = cfg
        self._timeouts: dict[tuple[str, str], Timeouts] = {}
        #: per-backend state; kept across a reload for a backend whose settings are unchanged
        self.backends: dict[str, BackendState] = {}
        for name, spec in cfg.backends.items():
            breaker = spec.breaker or cfg.server.breaker
            old = (previous or {}).get(name)
            same = old is not None and old.spec == spec and old.breaker_spec == breaker
            self.backends[name] = old if same and old is not None else BackendState(spec, breaker)
        self.source = source
        self.router = Router(cfg)
        self.classifier = Classifier(cfg.classifier)
        self.urls: dict[str, str] = {}
        self.headers: dict[str, dict[str, str]] = {}
        for name, backend in cfg.backends.items():
            if backend.url is not None:
                self.urls[name] = backend.url
            else:
                self.urls[name] = f"http://127.0.0.1:{ports[name]}"
            # identity: answers pass through byte for byte, so they must not be compressed
            headers = {
                "content-type": "application/json",
                "accept": "*/*",
                "accept-encoding": "identity",
            }
            if backend.api_key_env:
                headers["authorization"] = f"Bearer {os.environ.get(backend.api_key_env, '')}"
            self.headers[name] = headers

    def decide(
        self,
        endpoint: str,
        payload: Mapping[str, Any],
        eligible: Eligibility | None = None,
        rank: Ranker | None = None,
        memory: TaskMemory | None = None,
        *,
        learn: bool = True,
        counted: tuple[int, str] | None = None,
    ) -> Decision:
        """Classify (when asked to) and order the candidates. Pure apart from a random draw
        and `memory`, the task stickiness, which a real request updates (`learn`) and an
        explanation only reads. `counted`: the prompt's tokens by a tokenizer, and which."""
        if endpoint == "responses":
            # routed as the chat request it is served as (or relayed as, when the backend
            # serves the API itself): the same classes, signals and needs as chat; the
            # translation rides on the decision, so each attempt sends it without redoing it
            chat = responses.to_chat(payload)
            routed = self.decide("chat", chat, eligible, rank, memory, learn=learn, counted=counted)
            return replace(routed, chat=chat)
        model = str(payload["model"])
        size = _PromptSize(payload, counted)
        target = self.router.resolve(model)
        if target is None:
            names = ", ".join(self.router.known_names())
            raise ModelNotFound(
                f"The model {model[:100]!r} does not exist. Choose one of: {names}",
                param="model",
            )
        # The prompt's FIM markers, read at most once for this request whoever asks first:
        # the classifier, the infill check below, or body_for (through the Decision).
        prompt_fim = fim.PromptFim.of(payload) if endpoint == "completions" else None
        if target.kind == "variant":
            return self._direct(model, target.name, endpoint, payload, prompt_fim, size)
        lazy: LazySignals | None = None
        signals: Mapping[str, Any] = {}
        reading: dict[str, Any] | None = None
        if endpoint == "embeddings":
            cls, rule, reason = "embeddings", "endpoint", "embeddings request"
        elif target.kind == "class":
            cls, rule, reason = target.name, "model", f"client asked for class {target.name}"
        else:
            found = self.classifier.classify(endpoint, payload, prompt_fim)
            lazy = found.lazy
            cls, rule, reason, signals = found.cls, found.rule, found.reason, found.signals
            reading = _reading(found)
            if memory is not None and self.cfg.classifier.stickiness.enabled:
                cls, rule, reason = _stick(memory, found, reading, learn=learn)
        windows = self.windows((c.variant for c in self.router.route(cls)), endpoint)
        needs = self._needs(endpoint, payload, prompt_fim, lazy, size, windows)
        draw = random.random()
        candidates, skipped = self.router.candidates(
            cls, needs=needs, eligible=eligible, draw=draw, rank=rank
        )
        if not candidates and (needs.infill or needs.chat):
            # nothing takes the request as sent: a variant that serves it adapted will do
            # (chat as a plain transcript, infill as prefix-only; `upstream_for`)
            relaxed = replace(needs, infill=False, chat=False)
            candidates, skipped = self.router.candidates(
                cls, needs=relaxed, eligible=eligible, draw=draw, rank=rank
            )
        if not candidates:
            self._refuse(cls, skipped, size, windows)
        return Decision(
            cls=cls,
            rule=rule,
            reason=reason,
            variant=candidates[0],
            candidates=tuple(candidates),
            skipped=skipped,
            signals=signals,
            prompt_fim=prompt_fim,
            reading=reading,
            applied=self.applied(candidates[0], endpoint, payload, prompt_fim),
            context=size.shown(windows),
        )

    def windows(
        self, variants: Iterable[str], endpoint: str = "chat"
    ) -> dict[str, contextwindow.Window]:
        """The window each of `variants` serves, where one is known: the smallest its
        backends were seen serving (or, for chat, the `num_ctx` the proxy asks Ollama
        for), capped by its declared `context_window`."""
        out: dict[str, contextwindow.Window] = {}
        for name in variants:
            spec = self.cfg.variants[name]
            found: contextwindow.Window | None = None
            if spec.context_window is not None:
                found = contextwindow.Window(spec.context_window, "config context_window")
            if spec.num_ctx is not None and endpoint == "chat":
                asked = contextwindow.Window(spec.num_ctx, "num_ctx sent to Ollama /api/chat")
                out[name] = found if found is not None and found.tokens < asked.tokens else asked
                continue
            for backend in spec.backends:
                learned = self.backends[backend].windows
                seen = learned.get(spec.model) or learned.get(contextwindow.ANY)
                ps = seen is not None and seen.source == contextwindow.OLLAMA_PS_SOURCE
                if spec.num_ctx is not None and ps:
                    # not chat: /v1/completions can't carry num_ctx, so Ollama serves its
                    # default, whatever larger num_ctx a chat request just loaded
                    seen = contextwindow.ollama_default(self.backends[backend].version)
                if seen is not None and (found is None or seen.tokens < found.tokens):
                    found = seen
            if found is not None:
                out[name] = found
        return out

    def _direct(
        self,
        model: str,
        variant: str,
        endpoint: str,
        payload: Mapping[str, Any],
        prompt_fim: fim.PromptFim | None,
        size: _PromptSize,
    ) -> Decision:
        """A request that names its variant: no classification, and 400
        `context_length_exceeded` when the prompt can't fit the variant's window."""
        windows = self.windows((variant,), endpoint)
        window = windows.get(variant)
        if window is not None and endpoint != "embeddings":
            max_tokens = _max_tokens(payload)
            if size.tokens() + (max_tokens or 0) > window.tokens:
                raise _too_long(size, {variant: window}, max_tokens)
        return Decision(
            cls="direct",
            rule="model",
            reason=f"model {model!r} names variant {variant}",
            variant=variant,
            candidates=(variant,),
            prompt_fim=prompt_fim,
            applied=self.applied(variant, endpoint, payload, prompt_fim),
            context=size.shown(windows),
        )

    def _needs(
        self,
        endpoint: str,
        payload: Mapping[str, Any],
        prompt_fim: fim.PromptFim | None,
        lazy: LazySignals | None,
        size: _PromptSize,
        windows: Mapping[str, contextwindow.Window],
    ) -> Needs:
        """What the request needs of a variant: infill, tools, room for its prompt."""
        infill = wants_infill(payload, prompt_fim)
        reading = lazy or LazySignals(endpoint, payload, frozenset())
        return Needs(
            infill=infill,
            chat=endpoint == "chat",
            tools=bool(reading.get("needs_tools")),
            prompt_tokens=None if endpoint == "embeddings" else size.tokens,
            max_tokens=_max_tokens(payload),
            windows={name: w.tokens for name, w in windows.items()},
        )

    def _refuse(
        self,
        cls: str,
        skipped: Mapping[str, str],
        size: _PromptSize | None = None,
        windows: Mapping[str, contextwindow.Window] | None = None,
    ) -> NoReturn:
        if (
            size is not None
            and windows
            and skipped
            and all(why.startswith("context window") for why in skipped.values())
        ):
            raise _too_long(size, {v: windows[v] for v in skipped if v in windows}, None, skipped)
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "empty route"
        busy = [self._busy_backends(v) for v in skipped]
        if skipped and all(busy):
            wait = min(self.cfg.backends[b].queue_timeout for names in busy for b in names)
            raise UpstreamBusy(
                f"every variant for class {cls!r} is busy ({why})", retry_after=wait / 4
            )
        raise Unavailable(f"no eligible variant for class {cls!r} ({why})")

    def timeouts(self, variant: str, backend: str) -> Timeouts:
        """The backend's timeouts with the keys the variant sets overriding them."""
        key = (variant, backend)
        found = self._timeouts.get(key)
        if found is None:
            base = self.cfg.backends[backend].timeouts
            override = self.cfg.variants[variant].timeouts
            found = base
            if override is not None:
                found = base.model_copy(update=override.model_dump(exclude_unset=True))
            self._timeouts[key] = found
        return found

    def _busy_backends(self, variant: str) -> list[str]:
        """The variant's backends if all of them are at capacity with a full queue, else []."""
        names = list(self.cfg.variants[variant].backends)
        return names if all(self.backends[b].limiter.busy() for b in names) else []

    def _adaptation(
        self,
        variant: str,
        endpoint: str,
        payload: Mapping[str, Any],
        prompt_fim: fim.PromptFim | None,
    ) -> Adaptation | None:
        """How a request must change for `variant` to serve it (`proxy.prompting`)."""
        spec = self.cfg.variants[variant]
        if endpoint == "chat" and spec.api == "completion":
            return "transcript"
        if endpoint == "chat" and spec.num_ctx is not None:
            return "ollama-native"
        if endpoint == "completions" and spec.fim is None and wants_infill(payload, prompt_fim):
            return "prefix-only"
        return None

    def applied(
        self,
        variant: str,
        endpoint: str,
        payload: Mapping[str, Any],
        prompt_fim: fim.PromptFim | None = None,
    ) -> dict[str, Any] | None:
        """For explanations: the adaptation, defaults and caps `variant` applies to the
        request (None: it goes as sent)."""
        spec = self.cfg.variants[variant]
        adaptation = self._adaptation(variant, endpoint, payload, prompt_fim)
        if adaptation is None and not spec.defaults and spec.caps.max_tokens is None:
            return None
        _, applied = prompting.apply_limits(dict(payload), spec.defaults, spec.caps.max_tokens)
        if adaptation is not None:
            applied["adapted"] = adaptation
        return applied or None

    def serves_responses(self, variant: str, backend: str) -> bool:
        """Does `backend` answer `/v1/responses` itself for `variant`? Only when its config
        says so (`responses_api`) and the variant is a chat model: a base model's server
        would apply a chat template the model was never trained on."""
        native = self.cfg.backends[backend].responses_api
        return native and self.cfg.variants[variant].api == "chat"

    def upstream_for(
        self,
        variant: str,
        endpoint: str,
        payload: dict[str, Any],
        raw: bytes = b"",
        prompt_fim: fim.PromptFim | None = None,
        backend: str | None = None,
        chat: dict[str, Any] | None = None,
    ) -> UpstreamRequest:
        """What one attempt on `variant` (on `backend`) sends: the path and body
        (`body_for`), adapted when the variant can't take the request as sent
        (`proxy.prompting`): chat to a base model goes to `/v1/completions` as a
        transcript; infill to a model without FIM goes as its prefix only. A Responses
        request goes as sent to a backend that serves the API, else as chat
        (`proxy.responses`; `chat` is that translation when the decision made it)."""
        if endpoint == "responses":
            backend = backend or self.cfg.variants[variant].backend
            if self.serves_responses(variant, backend):
                spec = self.cfg.variants[variant]
                body = responses.with_limits(payload, spec.defaults, spec.caps.max_tokens)
                content = self.body_for(variant, endpoint, body, raw if body is payload else b"")
                return UpstreamRequest(ENDPOINTS[endpoint][0], content, None, responses="native")
            as_chat = chat if chat is not None else responses.to_chat(payload)
            return replace(self.upstream_for(variant, "chat", as_chat), responses="translated")
        adaptation = self._adaptation(variant, endpoint, payload, prompt_fim)
        path = ENDPOINTS[endpoint][0]
        if adaptation == "transcript":
            # body_for's endpoint stays "chat": the transcript is not read for FIM markers
            body = prompting.chat_to_completion(payload)
            content = self.body_for(variant, "chat", body, b"", None)
            path = ENDPOINTS["completions"][0]
        elif adaptation == "ollama-native":
            spec = self.cfg.variants[variant]
            limited, _ = prompting.apply_limits(dict(payload), spec.defaults, spec.caps.max_tokens)
            native = ollamanative.chat_request(limited, spec.model, spec.num_ctx or 0)
            content, path = orjson.dumps(native), ollamanative.NATIVE_PATH
        elif adaptation == "prefix-only":
            parts = prompt_fim.parts if prompt_fim is not None else None
            body = prompting.prefix_only(payload, parts)
            content = self.body_for(variant, endpoint, body, b"", None)
        else:
            content = self.body_for(variant, endpoint, payload, raw, prompt_fim)
        return UpstreamRequest(path, content, adaptation)

    def body_for(
        self,
        variant: str,
        endpoint: str,
        payload: dict[str, Any],
        raw: bytes = b"",
        prompt_fim: fim.PromptFim | None = None,
    ) -> bytes:
        """The body for the backend: `model` rewritten (and the FIM prompt for completion
        traffic), everything else as the client sent it. `prompt_fim` is the request's
        FIM reading (`Decision.prompt_fim`), so the prompt is not searched again."""
        spec = self.cfg.variants[variant]
        out = payload
        # a Responses request sent as is got its limits from `responses.with_limits`
        if endpoint != "responses" and (spec.defaults or spec.caps.max_tokens is not None):
            out, changed = prompting.apply_limits(out, spec.defaults, spec.caps.max_tokens)
            if changed:
                raw = b""  # the raw body no longer says what is sent
        if endpoint == "completions" and spec.fim is not None:
            out = fim.normalize(endpoint, out, spec.fim, prompt_fim)
            if out is not payload:
                raw = b""
        if raw:
            # only `model` changes: set it in the client's bytes (no re-encoding)
            spliced = rawjson.replace_model(raw, str(payload["model"]), spec.model)
            if spliced is not None:
                return spliced
        out = dict(out)
        out["model"] = spec.model
        content = orjson.dumps(out)
        if b"e+" in content and raw and _LONG_DIGITS.search(raw):
            # orjson may have read an integer beyond 64 bits as a float (which it writes with
            # `e+`); the stdlib keeps it exact. Floats the client wrote with `e+` don't matter
            # here: only a long run of digits can be such an integer.
            exact = json.loads(raw)
            exact["model"] = out["model"]
            content = json.dumps(exact, ensure_ascii=False, separators=(",", ":")).encode()
        return content


def _max_tokens(payload: Mapping[str, Any]) -> int | None:
    """The answer's length the request reserves (`max_completion_tokens` or `max_tokens`)."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


class _PromptSize:
    """The prompt's tokens, worked out once and only if a window asks: a real count when
    the dispatcher got one, else `contextwindow.estimate`."""

    def __init__(self, payload: Mapping[str, Any], counted: tuple[int, str] | None) -> None:
        self._payload = payload
        self._value = counted[0] if counted is not None else None
        self.counted_by = counted[1] if counted is not None else "estimate"

    def tokens(self) -> int:
        if self._value is None:
            self._value = contextwindow.estimate(self._payload)
        return self._value

    def shown(self, windows: Mapping[str, contextwindow.Window]) -> dict[str, Any] | None:
        """For explanations: the count and the windows it was held against."""
        if not windows:
            return None
        return {
            "prompt_tokens": self.tokens(),
            "counted_by": self.counted_by,
            "windows": {n: {"tokens": w.tokens, "source": w.source} for n, w in windows.items()},
        }


def _too_long(
    size: _PromptSize,
    windows: Mapping[str, contextwindow.Window],
    max_tokens: int | None,
    skipped: Mapping[str, str] | None = None,
) -> ContextLengthExceeded:
    """OpenAI's `context_length_exceeded`, with the numbers."""
    largest = max(w.tokens for w in windows.values())
    prompt = size.tokens()
    answer = f" and max_tokens {max_tokens}" if max_tokens else ""
    why = "; ".join(f"{k}: {v}" for k, v in (skipped or {}).items())
    names = ", ".join(windows)
    return ContextLengthExceeded(
        tuple(windows),
        f"This request needs ~{prompt} prompt tokens{answer} ({size.counted_by}); the largest "
        f"serving context window of the variants that could take it ({names}) is {largest} "
        f"tokens. Shorten the messages or ask for a variant with a larger window"
        + (f" ({why})" if why else "")
        + ".",
        param="messages",
        extra={"prompt_tokens": prompt, "context_window": largest, "counted_by": size.counted_by},
    )


#: how much of the ask an explanation shows
_ASK_SHOWN = 200


def _reading(found: Classification) -> dict[str, Any]:
    """How the classifier read the request, for explanations."""
    env = found.envelope
    ask = " ".join(env.ask[: _ASK_SHOWN * 2].split())
    lazy = found.lazy
    return {
        "client": env.client,
        "ask": ask if len(ask) <= _ASK_SHOWN else ask[: _ASK_SHOWN - 1] + "…",
        "sizes": {
            "ask_tokens": lazy.get("ask_tokens"),
            "attached_tokens": lazy.get("attached_tokens"),
            "boilerplate_tokens": lazy.get("boilerplate_tokens"),
            "tokens": lazy.get("tokens"),
        },
        "background": env.background,
        "tool_turn": env.tool_turn,
        "sticky": None,
    }


def _stick(
    memory: TaskMemory, found: Classification, reading: dict[str, Any], *, learn: bool
) -> tuple[str, str, str]:
    """The class after task stickiness (see `proxy.sticky`), and its rule and reason."""
    key = found.envelope.task_key
    if key is None:
        return found.cls, found.rule, found.reason
    prior = memory.recall(key, touch=learn)
    # a new human ask changes the task's class; a tool turn or a "go on" reply does not
    changed = not found.envelope.tool_turn and not is_continuation(found.envelope.ask)
    if prior is None or (prior.cls != found.cls and changed):
        if learn:
            memory.remember(key, found.cls, found.rule)
        reading["sticky"] = {"task": key, "class": found.cls, "kept": False}
        return found.cls, found.rule, found.reason
    reading["sticky"] = {"task": key, "class": prior.cls, "kept": True, "set_by": prior.rule}
    if prior.cls == found.cls:
        return found.cls, found.rule, found.reason
    this = f"this step alone: {found.cls} ({found.rule})"
    return prior.cls, "sticky", f"task {key} stays {prior.cls} (set by {prior.rule}); {this}"
