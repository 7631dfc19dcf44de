"""The rule language: conditions over signals, named rules, and the ``classifier:``
config section that holds them. Validated once at load; compiled once per config.

A rule proposes a class when its condition holds. Rule syntax (YAML, see
``config/classifier.default.yaml`` and ``docs/classifier.md``)::

    - name: long-context
      class: complex
      when:
        any:
          - {signal: user_tokens, op: ">=", value: 3000}
          - {signal: n_files, gte: 4}          # compact form of the same leaf

A condition is ``{all: [...]}``, ``{any: [...]}``, ``{not: cond}`` or a leaf
``{signal, op, value}``; ops are ``> >= < <= == != in contains is`` and the compact
keys ``gt gte lt lte eq ne in contains is``. Validation happens at load and names the
offending key (``rules.2.when.all.0.signal: unknown signal 'tokenz' (known: …)``): the
signal must exist, the op must suit the signal's kind (:data:`SIGNAL_KINDS`) and the
value must suit the op.

:func:`compile_condition` turns a condition into a predicate over
:class:`~proxy.classify.signals.LazySignals`, so a rule reads only the signals it
names and the deep ones are computed only if some rule gets that far.

The class names live here (:data:`CLASSES`) because the schema validates against
them; ``proxy.classify`` re-exports them as the one list of classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .lexicon import ALIASES, DEFAULT_PRIMARY_LANGUAGES, KNOWN_LANGUAGES
from .signals import SIGNAL_KINDS, LazySignals

__all__ = [
    "CLASSES",
    "DEFAULT_ORDER",
    "OPS",
    "ClassifierConfig",
    "Condition",
    "Rule",
    "Stickiness",
    "compile_condition",
]

CLASSES: tuple[str, ...] = ("completion", "instruction", "complex", "multi-language")
DEFAULT_ORDER: tuple[str, ...] = ("completion", "complex", "multi-language", "instruction")

OPS: tuple[str, ...] = (">", ">=", "<", "<=", "==", "!=", "in", "contains", "is")
_COMPACT_OPS: dict[str, str] = {
    "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "==", "ne": "!=", "in": "in",
    "contains": "contains", "is": "is",
}  # fmt: skip
_OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "num": (">", ">=", "<", "<=", "==", "!=", "in", "is"),
    "bool": ("==", "!=", "is"),
    "str": ("==", "!=", "in", "is"),
    "set": ("contains", "is"),
}


class Condition(BaseModel):
    """One node of a rule's condition tree: exactly one of ``all``, ``any``, ``not`` or a
    leaf ``signal``/``op``/``value`` (compact leaf: ``{signal: tokens, gte: 3000}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    signal: str | None = None
    op: str | None = None
    value: Any = Field(default=None, validate_default=True)
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    not_: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="before")
    @classmethod
    def _compact_leaf(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "signal" in data and "op" not in data:
            compact = [k for k in data if k in _COMPACT_OPS]
            if len(compact) == 1:
                rest = {k: v for k, v in data.items() if k != compact[0]}
                return {**rest, "op": _COMPACT_OPS[compact[0]], "value": data[compact[0]]}
        return data

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, v: str | None) -> str | None:
        if v is not None and v not in SIGNAL_KINDS:
            raise ValueError(f"unknown signal {v!r} (known: {', '.join(SIGNAL_KINDS)})")
        return v

    @field_validator("op")
    @classmethod
    def _known_op(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if v not in OPS:
            raise ValueError(
                f"unknown op {v!r} (known: {', '.join(OPS)}; compact keys: "
                f"{', '.join(_COMPACT_OPS)})"
            )
        signal = info.data.get("signal")
        if signal in SIGNAL_KINDS:
            allowed = _OPS_BY_KIND[SIGNAL_KINDS[signal]]
            if v not in allowed:
                raise ValueError(
                    f"op {v!r} does not apply to {SIGNAL_KINDS[signal]} signal {signal!r} "
                    f"(use one of: {', '.join(allowed)})"
                )
        return v

    @field_validator("value")
    @classmethod
    def _value_type(cls, v: Any, info: ValidationInfo) -> Any:
        signal, op = info.data.get("signal"), info.data.get("op")
        if signal not in SIGNAL_KINDS or op is None:
            return v
        kind = SIGNAL_KINDS[signal]
        if op == "is":
            if v is not None and not isinstance(v, bool):
                raise ValueError(f"op 'is' needs true, false or null, got {v!r}")
            return v
        if op == "in":
            if not isinstance(v, list) or not v:
                raise ValueError(f"op 'in' needs a non-empty list, got {v!r}")
            for item in v:
                _check_scalar(kind, signal, item)
            return tuple(v)
        if op == "contains":
            if isinstance(v, list):
                if not v or not all(isinstance(i, str) for i in v):
                    raise ValueError(f"op 'contains' needs a string or list of strings, got {v!r}")
                return tuple(v)
            if not isinstance(v, str):
                raise ValueError(f"op 'contains' needs a string or list of strings, got {v!r}")
            return v
        _check_scalar(kind, signal, v)
        return v

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        forms = [
            name
            for name, present in (
                ("all", self.all is not None),
                ("any", self.any is not None),
                ("not", self.not_ is not None),
                ("signal", self.signal is not None),
            )
            if present
        ]
        if len(forms) != 1:
            raise ValueError(
                "a condition needs exactly one of all, any, not, or signal+op+value; "
                f"got {', '.join(forms) or 'none'}"
            )
        if self.signal is not None and self.op is None:
            raise ValueError(
                f"condition on signal {self.signal!r} needs op and value "
                f"(e.g. {{signal: {self.signal}, op: '>=', value: 1}} or a compact key)"
            )
        if self.signal is None and self.op is not None:
            raise ValueError("op given without signal")
        if (self.all is not None and not self.all) or (self.any is not None and not self.any):
            raise ValueError("all/any need at least one condition")
        return self

    def signals(self) -> list[str]:
        """Signal names this condition reads, in order, without repeats."""
        if self.signal is not None:
            return [self.signal]
        out: list[str] = []
        for child in (self.all or []) + (self.any or []) + ([self.not_] if self.not_ else []):
            for name in child.signals():
                if name not in out:
                    out.append(name)
        return out


def _check_scalar(kind: str, signal: str, v: Any) -> None:
    if kind == "num" and (isinstance(v, bool) or not isinstance(v, int | float)):
        raise ValueError(f"signal {signal!r} is a number; got {v!r}")
    if kind == "bool" and not isinstance(v, bool):
        raise ValueError(f"signal {signal!r} is true/false; got {v!r}")
    if kind == "str" and v is not None and not isinstance(v, str):
        raise ValueError(f"signal {signal!r} is a string; got {v!r}")
    if kind == "set":
        raise ValueError(f"signal {signal!r} is a set; use op 'contains' or 'is'")


def _check_class(v: str) -> str:
    if v not in CLASSES:
        raise ValueError(f"unknown class {v!r} (known: {', '.join(CLASSES)})")
    return v


class Rule(BaseModel):
    """A named condition that, when it holds, proposes ``class``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    class_: str = Field(alias="class")
    when: Condition
    description: str = ""
    #: rules with a higher priority are checked first, whatever their class
    priority: int = 0

    @field_validator("class_")
    @classmethod
    def _known_class(cls, v: str) -> str:
        return _check_class(v)


def _c(signal: str, op: str, value: Any) -> dict[str, Any]:
    return {"signal": signal, "op": op, "value": value}


# The shipped defaults; config/classifier.default.yaml says the same thing in YAML.
_DEFAULT_RULES: list[dict[str, Any]] = [
    {"name": "fim-markers", "class": "completion", "when": _c("fim_marker", "is", True)},
    {"name": "suffix-field", "class": "completion", "when": _c("has_suffix", "is", True)},
    {"name": "code-continuation", "class": "completion",
     "when": {"all": [_c("endpoint", "==", "completions"),
                      _c("instruction_like", "is", False)]}},
    {"name": "background-task", "class": "instruction", "priority": 1,
     "when": _c("background", "is", True)},
    {"name": "long-context", "class": "complex",
     "when": {"any": [_c("user_tokens", ">=", 3000), _c("n_files", ">=", 4),
                      _c("log_lines", ">=", 30)]}},
    {"name": "hard-problem", "class": "complex", "when": _c("complexity_score", ">=", 3)},
    {"name": "deep-debugging", "class": "complex", "when": _c("debug_score", ">=", 2)},
    {"name": "translation", "class": "multi-language",
     "when": {"any": [_c("translation_intent", "is", True), _c("interop_intent", "is", True)]}},
    {"name": "several-languages", "class": "multi-language",
     "when": _c("n_core_languages", ">=", 2)},
    {"name": "non-primary-language", "class": "multi-language",
     "when": _c("non_primary_languages", "is", True)},
    {"name": "non-english", "class": "multi-language", "when": _c("non_english", "is", True)},
]  # fmt: skip


def _default_rules() -> list[Rule]:
    return [Rule.model_validate(r) for r in _DEFAULT_RULES]


class Stickiness(BaseModel):
    """``classifier.stickiness``: the steps of one agent task keep its first class."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    #: tasks remembered at most (least recently used first out)
    max_tasks: int = Field(4096, ge=1, le=1_000_000)
    #: a task is forgotten this long after its last step
    ttl_seconds: float = Field(1800.0, gt=0)


class ClassifierConfig(BaseModel):
    """The ``classifier:`` section of the router config.

    ``rules`` replaces the shipped rules entirely when given. ``order`` ranks classes
    when several rules match; classes it leaves out rank after the listed ones.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    order: list[str] = Field(default_factory=lambda: list(DEFAULT_ORDER))
    primary_languages: list[str] = Field(default_factory=lambda: list(DEFAULT_PRIMARY_LANGUAGES))
    default_class: str = "instruction"
    rules: list[Rule] = Field(default_factory=_default_rules)
    stickiness: Stickiness = Stickiness()

    @field_validator("order")
    @classmethod
    def _valid_order(cls, v: list[str]) -> list[str]:
        for name in v:
            _check_class(name)
        if len(set(v)) != len(v):
            raise ValueError(f"order lists a class twice: {v}")
        return v

    @field_validator("primary_languages")
    @classmethod
    def _valid_languages(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for name in v:
            lang = ALIASES.get(str(name).lower())
            if lang is None:
                raise ValueError(
                    f"unknown language {name!r} (known: {', '.join(sorted(KNOWN_LANGUAGES))})"
                )
            out.append(lang)
        return out

    @field_validator("default_class")
    @classmethod
    def _valid_default(cls, v: str) -> str:
        return _check_class(v)

    @model_validator(mode="after")
    def _unique_rule_names(self) -> ClassifierConfig:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rules: duplicate rule name {rule.name!r}")
            seen.add(rule.name)
        return self


# --- compilation ---------------------------------------------------------------------------

#: A compiled condition: does it hold for these signals?
Predicate = Callable[[LazySignals], bool]


def compile_condition(cond: Condition) -> Predicate:
    """``cond`` as a predicate; a leaf reads its one signal when it is evaluated."""
    if cond.all is not None:
        parts = [compile_condition(c) for c in cond.all]
        return lambda s: all(p(s) for p in parts)
    if cond.any is not None:
        parts = [compile_condition(c) for c in cond.any]
        return lambda s: any(p(s) for p in parts)
    if cond.not_ is not None:
        inner = compile_condition(cond.not_)
        return lambda s: not inner(s)
    assert cond.signal is not None and cond.op is not None
    name, op, want = cond.signal, cond.op, cond.value

    def leaf(s: LazySignals) -> bool:
        got = s.get(name)
        if op == "is":
            return got is None if want is None else bool(got) is want
        if op == "==":
            return bool(got == want)
        if op == "!=":
            return bool(got != want)
        if op == "in":
            return got in want
        if op == "contains":
            if isinstance(want, tuple):
                return any(w in got for w in want)
            return want in got
        if got is None:
            return False
        if op == ">":
            return bool(got > want)
        if op == ">=":
            return bool(got >= want)
        if op == "<":
            return bool(got < want)
        return bool(got <= want)

    return leaf
