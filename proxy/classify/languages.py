"""Which languages a request involves: programming languages in code, file names and
prose, and the human language the prose is written in. Pure functions of strings.

Programming languages come from five places, each cheap and bounded: fence info strings
(```` ```rust ````), syntax fingerprints of unlabelled code (weighted tokens and
markers from the lexicon; a language must score clearly ahead of the runner-up), file
names and their extensions (in prose, fence info strings and file/diff headers),
shebangs, and names in prose. Prose names are split into *strong* ones (unambiguous
words) and *weak* ones (Go, C, R, Swift…) that count only in a context that makes them
a language ("in Go", "Go code"); a name in a comparison ("like Haskell's") or as
background ("a Java developer") does not count.

The human language is read from scripts (kana, Hangul, Cyrillic…) first, then from
stop words and diacritics; English wins unless another language clearly leads.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from .lexicon import (
    ALIASES,
    ANCILLARY_LANGUAGES,
    BACKGROUND_AFTER,
    BANNER_RE,
    CODE_EXTENSIONS,
    CODE_TOKEN_RE,
    COMPARISON_PAIRS,
    COMPARISON_WORDS,
    DIACRITICS,
    FILE_EXT_RE,
    FRAMEWORK_NAMES,
    HEADER_NEEDLES,
    KNOWN_LANGUAGES,
    LANG_MARKERS,
    NAME_CHARS,
    NAME_FIRST_WORDS,
    NAME_PHRASES,
    NON_ASCII_RE,
    SCRIPTS,
    SHEBANG_LANG,
    SHEBANG_RE,
    SPECIAL_FILES,
    STOP_INDEX,
    STRONG_NAMES,
    TOKEN_WEIGHTS,
    WEAK_AFTER,
    WEAK_BEFORE,
    WEAK_NAMES,
    WEAK_SKIP,
)

_CODE_SAMPLE = 1500  # characters per code segment read for syntax fingerprints

# --- programming languages in code --------------------------------------------------------


def fence_language(info: str) -> str | None:
    if not info:
        return None
    word = re.split(r"[\s{:,]", info, maxsplit=1)[0].lower().strip(".")
    lang = ALIASES.get(word)
    if lang is None and "." in word:  # "```src/main.rs"
        lang = ALIASES.get(word.rsplit(".", 1)[1])
    return lang


def syntax_language(code: str) -> str | None:
    sample = code[:_CODE_SAMPLE]
    scores: Counter[str] = Counter()
    for tok in set(CODE_TOKEN_RE.findall(sample)):
        for lang, weight in TOKEN_WEIGHTS.get(tok, ()):
            scores[lang] += weight
    for lang, markers in LANG_MARKERS.items():
        hits = sum(1 for m in markers if m in sample)
        if hits:
            scores[lang] += 4 + 2 * hits
    if not scores:
        return None
    (best, top), *rest = scores.most_common(2) + [("", 0)]
    second = rest[0][1]
    if top < 5 or top < second + 2:
        return None
    return best


def segment_languages(segments: Iterable[tuple[str, str]]) -> set[str]:
    """Languages of code segments: the fence's info string, else the syntax fingerprint
    of the segment (only the first three unlabelled segments of 20+ characters)."""
    langs: set[str] = set()
    sampled = 0
    for info, code in segments:
        lang = fence_language(info)
        if lang is None and sampled < 3 and len(code) >= 20:
            sampled += 1
            lang = syntax_language(code)
        if lang is not None:
            langs.add(lang)
    return langs


def attached_languages(text: str) -> set[str]:
    """Languages of what the user attached: fence info strings (```zig src/x.zig), and file
    names on lines of their own (aider's ``lib/cart.ex`` before a fence). Only fence openers
    and short lines are read, so the cost is the window's line count, not its code."""
    langs: set[str] = set()
    for line in text.splitlines():
        head = line.lstrip()
        if head.startswith(("```", "~~~")):
            info = head.strip("`~ \t")
            lang = fence_language(info)
            if lang is not None:
                langs.add(lang)
                continue
        elif len(head) > 120 or " " in head.strip():
            continue
        for m in FILE_EXT_RE.finditer(head):
            ext = m.group(1).lower()
            if ext in CODE_EXTENSIONS:
                langs.add(ALIASES.get(ext) or ext)
    return langs


def shebang_languages(scan: str) -> set[str]:
    """Languages named by ``#!`` lines (an unknown interpreter counts as shell)."""
    if "#!" not in scan:
        return set()
    return {SHEBANG_LANG.get(m.group(1), "shell") for m in SHEBANG_RE.finditer(scan)}


def settle_code_languages(found: set[str]) -> frozenset[str]:
    """Known languages only, without the ones a superset language always implies."""
    langs = found & KNOWN_LANGUAGES
    if "cpp" in langs:
        langs.discard("c")  # C++ code matches C fingerprints and .h headers
    if "typescript" in langs:
        langs.discard("javascript")
    return frozenset(langs)


def core_languages(
    languages: frozenset[str], code_languages: frozenset[str], translate: bool
) -> set[str]:
    """The languages that make a request multi-language: not the ancillary ones (SQL,
    HTML, CSS, shell), and one ecosystem (JS/TS, C/C++) counts once unless the request
    converts between them."""
    core = {lang for lang in languages if lang not in ANCILLARY_LANGUAGES}
    if {"typescript", "javascript"} <= core and not translate:
        core.discard("javascript")  # one ecosystem, unless converting between them
    if {"c", "cpp"} <= core and not ({"c", "cpp"} <= code_languages or translate):
        core.discard("c")
    return core


# --- file names ------------------------------------------------------------------------------


def header_names(text: str, limit: int = 400) -> list[str]:
    """File names from headers: ``diff --git a/x``, ``# file: x.py``, ``=== x.go ===``."""
    out: list[str] = []
    for needle in HEADER_NEEDLES:
        pos = text.find(needle)
        while pos >= 0 and len(out) < limit:
            end = text.find("\n", pos)
            rest = text[pos + len(needle) : end if end >= 0 else len(text)].split()
            if rest and "." in rest[0]:
                out.append(rest[0])
            pos = text.find(needle, pos + len(needle))
    if "===" in text:
        out += BANNER_RE.findall(text)
    return out


def without_file_names(text: str) -> str:
    """``text`` with every file name or path (``src/lock.go``, ``Profile.tsx``) blanked."""
    spans: list[tuple[int, int]] = []
    for m in FILE_EXT_RE.finditer(text):
        start = m.start()
        while start > 0 and text[start - 1] in NAME_CHARS:
            start -= 1
        if start < m.start():  # a name before the extension, not a lone ".py"
            spans.append((start, m.end()))
    if not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        out.append(text[pos:start])
        out.append(" ")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def file_names(
    prose: str, segments: Iterable[tuple[str, str]], scan: str
) -> tuple[set[str], set[str]]:
    """File names mentioned in prose, in fence info strings and in file/diff headers of
    ``scan``, and the languages their code extensions name."""
    names = [prose, *(info for info, _ in segments if "." in info)]
    names += header_names(scan)
    files: set[str] = set()
    langs: set[str] = set()
    for m in FILE_EXT_RE.finditer("\n".join(names)):
        text = m.string
        start = m.start()
        while start > 0 and text[start - 1] in NAME_CHARS:
            start -= 1
        name = text[start : m.end()].strip("./-").lower()
        if "." not in name or name.startswith(("http", "www")) or name[0].isdigit():
            continue
        # one file however it is written: `src/x.py`, a diff's `a/src/x.py` and `b/src/x.py`,
        # a link's `/home/me/proj/src/x.py` all count once
        files.add(name.rsplit("/", 1)[-1])
        ext = m.group(1).lower()
        if ext in CODE_EXTENSIONS:
            langs.add(ALIASES.get(ext) or ext)
    for special in SPECIAL_FILES:
        if special in scan:
            files.add(special.lower())
    return files, langs


# --- languages named in prose ----------------------------------------------------------------

#: Words that introduce the language code is moved to: "port this to Rust", "en Go".
TARGET_WORDS = frozenset("to into en vers nach para на naar".split())


def named_target(tokens: list[str], lower: list[str]) -> str | None:
    """A language (not a framework) named as a destination ("… to Rust"), as in a
    request to port code."""
    for i in range(len(lower) - 1):
        if lower[i] not in TARGET_WORDS:
            continue
        name = lower[i + 1]
        if name in STRONG_NAMES and name not in FRAMEWORK_NAMES:
            return STRONG_NAMES[name]
        if tokens[i + 1] in WEAK_NAMES:
            return WEAK_NAMES[tokens[i + 1]]
    return None


def prose_languages(tokens: list[str], lower: list[str]) -> set[str]:
    found: set[str] = set()
    n = len(tokens)
    strong = NAME_FIRST_WORDS.intersection(lower)
    weak = WEAK_NAMES.keys() & set(tokens)
    if not strong and not weak:
        return found
    for i, low in enumerate(lower):
        if low not in strong and tokens[i] not in weak:
            continue
        lang = STRONG_NAMES.get(low)
        if lang is None:
            for rest_lang in _phrase_name(lower, i):
                lang = rest_lang
        if lang is None:
            weak_lang = WEAK_NAMES.get(tokens[i])
            if weak_lang is None:
                continue
            before = lower[i - 1] if i > 0 else ""
            if before in WEAK_SKIP and i > 1:
                before = lower[i - 2] if lower[i - 2] in WEAK_BEFORE else before
            after = lower[i + 1] if i + 1 < n else ""
            if before not in WEAK_BEFORE and after not in WEAK_AFTER:
                continue
            lang = weak_lang
        prev = lower[i - 1] if i > 0 else ""
        if prev in COMPARISON_WORDS or (i > 1 and (lower[i - 2], prev) in COMPARISON_PAIRS):
            continue
        if i + 1 < n and lower[i + 1] in BACKGROUND_AFTER and (i < 1 or lower[i - 1] != "for"):
            continue
        found.add(lang)
    return found


def _phrase_name(lower: list[str], i: int) -> Iterable[str]:
    for length in (2, 3):
        key = tuple(lower[i : i + length])
        if len(key) == length and key in NAME_PHRASES:
            yield NAME_PHRASES[key]


# --- human language ------------------------------------------------------------------------


def human_language(prose: str, lower: list[str]) -> str:
    if not prose.isascii():
        non_ascii = "".join(NON_ASCII_RE.findall(prose))
        words = max(1, len(lower))
        for lang, pattern in SCRIPTS:
            n = len(pattern.findall(non_ascii))
            if lang == "ja" and n >= 2:
                return "ja"
            if (n >= 4 and n >= 0.15 * words) or n >= 12:
                return lang
    else:
        non_ascii = ""
    if len(lower) < 3:
        return "en"
    scores: dict[str, float] = {}
    for word, count in Counter(lower).items():
        for lang in STOP_INDEX.get(word, ()):
            scores[lang] = scores.get(lang, 0.0) + count
    if non_ascii:
        for lang, chars in DIACRITICS.items():
            hits = sum(non_ascii.count(c) for c in chars)
            scores[lang] = scores.get(lang, 0.0) + 0.5 * min(10, hits)
    english = scores.pop("en", 0.0)
    if not scores:
        return "en"
    lang, best = max(scores.items(), key=lambda kv: kv[1])
    if best >= 2 and best > 1.3 * english and best >= 0.12 * len(lower):
        return lang
    return "en"
