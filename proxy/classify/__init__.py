"""Request classifier: an OpenAI-style request body → one class and the reason. Pure.

Classes (names are fixed, :data:`CLASSES`):

* ``completion``: editor autocomplete / fill-in-the-middle.
* ``instruction``: write, change or explain code from a plain instruction (the default).
* ``complex``: long context, design/architecture, deep debugging, concurrency,
  performance, proofs, algorithms under constraints.
* ``multi-language``: several programming languages (translate, port, bindings), a
  language outside ``primary_languages``, or a prompt not written in English.

Design, in three stages, one module each:

1. The envelope (:mod:`.envelope`). Coding clients wrap the user's ask in boilerplate:
   system prompts, repo maps, edit rules, file listings, tool output. The request's
   shape is recognised by its fixed markers (aider, Cline/Roo, Continue, Zed, Open
   WebUI, tool-calling agents, commit-message generators; anything else by a generic
   rule) and the current human ask is taken out of it, with what the user attached
   and the size of everything else.
2. Signals (:mod:`.signals`, reading :mod:`.text` and :mod:`.languages`, with every
   table in :mod:`.lexicon`). The ask is read into named facts (:class:`Signals`:
   sizes, FIM markers, languages, vocabulary scores…), each group of them only when a
   rule first asks for one.
3. Rules (:mod:`.rules`: the rule language, its schema and its compilation). Each rule
   proposes a class when its condition holds. The decision is the matching rule with
   the highest ``priority``, then whose class comes first in ``order``, then listed
   first. Rules are evaluated in exactly that order and evaluation stops at the first
   match, which gives the same answer as "evaluate all, then pick". No match →
   ``default_class`` with rule ``"default"``.

This module is the engine (:class:`Classifier`, :class:`Classification`) and the
public surface: import from ``proxy.classify``, not from the submodules. The caller
passes the endpoint name (``"chat"`` or ``"completions"``), and, when it has one, the
request's :class:`proxy.fim.PromptFim`, so FIM markers are detected once per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from proxy.fim import PromptFim

from .envelope import Envelope, read_envelope
from .lexicon import ANCILLARY_LANGUAGES, DEFAULT_PRIMARY_LANGUAGES, KNOWN_LANGUAGES
from .rules import (
    CLASSES,
    DEFAULT_ORDER,
    OPS,
    ClassifierConfig,
    Condition,
    Predicate,
    Rule,
    compile_condition,
)
from .signals import SIGNAL_KINDS, LazySignals, Signals, extract_signals, jsonable
from .text import is_continuation

__all__ = [
    "ANCILLARY_LANGUAGES",
    "CLASSES",
    "DEFAULT_ORDER",
    "DEFAULT_PRIMARY_LANGUAGES",
    "KNOWN_LANGUAGES",
    "OPS",
    "SIGNAL_KINDS",
    "Classification",
    "Classifier",
    "ClassifierConfig",
    "Condition",
    "Envelope",
    "LazySignals",
    "Rule",
    "Signals",
    "compile_condition",
    "extract_signals",
    "is_continuation",
    "read_envelope",
]


@dataclass(frozen=True)
class Classification:
    """The decision: class, deciding rule, a short reason and the deciding signals.

    ``signals`` holds only the signals the winning rule read. :meth:`signals_dict`
    gives all of them; it computes any signal the rules did not need, so call it only
    when you log or show the decision.
    """

    cls: str
    rule: str
    reason: str
    signals: dict[str, Any]
    _lazy: LazySignals = field(repr=False, compare=False)

    def all_signals(self) -> Signals:
        """Every signal (computed on first call)."""
        return self._lazy.full()

    @property
    def envelope(self) -> Envelope:
        """What the request was read as: the client, the ask, the sizes."""
        return self._lazy.envelope

    @property
    def lazy(self) -> LazySignals:
        """The request's signals: those computed so far, and the rest on demand."""
        return self._lazy

    def computed(self) -> list[str]:
        """The signals computed to reach this decision (the rest were never needed)."""
        return self._lazy.computed()

    def signals_dict(self) -> dict[str, Any]:
        """Every signal, JSON-able (for logs and debug headers)."""
        return self.all_signals().as_dict()


@dataclass(frozen=True)
class _CompiledRule:
    name: str
    cls: str
    pred: Predicate
    reads: tuple[str, ...]


class Classifier:
    """Rules compiled once from a :class:`ClassifierConfig`; :meth:`classify` is pure."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        self.config = config or ClassifierConfig()
        order = list(self.config.order) + [c for c in DEFAULT_ORDER if c not in self.config.order]
        rank = {c: i for i, c in enumerate(order)}
        self._primary = frozenset(self.config.primary_languages)
        # Evaluation order = decision order: priority, class rank, position in the file.
        indexed = sorted(
            enumerate(self.config.rules),
            key=lambda ir: (-ir[1].priority, rank[ir[1].class_], ir[0]),
        )
        self._rules = [
            _CompiledRule(r.name, r.class_, compile_condition(r.when), tuple(r.when.signals()))
            for _, r in indexed
        ]

    def signals(self, endpoint: str, body: Mapping[str, Any]) -> Signals:
        """All signals for one request, with this classifier's primary languages."""
        return extract_signals(endpoint, body, self._primary)

    def classify(
        self, endpoint: str, body: Mapping[str, Any], prompt_fim: PromptFim | None = None
    ) -> Classification:
        """Classify one request to endpoint ``endpoint`` (``"chat"``, ``"completions"``;
        anything else is ``other``). ``prompt_fim`` is the request's FIM reading when the
        caller made one (see :class:`proxy.fim.PromptFim`). Never raises."""
        lazy = LazySignals(endpoint, body, self._primary, prompt_fim)
        found = self._decide(lazy)
        if found.rule != "default" or endpoint != "chat":
            return found
        env = lazy.envelope
        if not env.context or not is_continuation(env.ask):
            return found
        # "ok, go ahead", "continue", "start with step 1": the step goes on with the task
        # the user asked for before, so it is read as that ask
        for earlier in reversed(env.context):
            if is_continuation(earlier):
                continue
            task = LazySignals(
                endpoint, body, self._primary, prompt_fim, replace(env, ask=earlier, attached="")
            )
            before = self._decide(task)
            if before.rule == "default":
                break
            shown = " ".join(earlier.split())[:80]
            reason = f"continues the earlier ask {shown!r}: {before.reason}"
            return Classification(before.cls, "continuation", reason, before.signals, lazy)
        return found

    def _decide(self, lazy: LazySignals) -> Classification:
        """The first rule that holds, in evaluation order; the default class if none does."""
        for rule in self._rules:
            try:
                ok = rule.pred(lazy)
            except Exception:  # noqa: BLE001 - e.g. a custom rule comparing mixed types
                ok = False
            if ok:
                deciding = {name: jsonable(lazy.get(name)) for name in rule.reads}
                shown = ", ".join(f"{k}={v}" for k, v in deciding.items())
                return Classification(
                    rule.cls, rule.name, f"rule {rule.name}: {shown}", deciding, lazy
                )
        return Classification(self.config.default_class, "default", "no rule matched", {}, lazy)
