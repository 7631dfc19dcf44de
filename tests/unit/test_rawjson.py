"""The top-level `model` set in the client's bytes, or left to a re-encode when unsure."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.rawjson import replace_model


def _pairs(raw: bytes) -> list[tuple[str, Any]]:
    """The top-level members in order, duplicates kept."""
    return json.loads(raw, object_pairs_hook=lambda pairs: pairs)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"model":"auto","messages":[]}', b'"auto"'),
        (b'{"messages":[],"model":"auto"}', b'"auto"'),
        (b'{ "messages" : [] ,\n  "model" :\t"auto" }', b'"auto"'),
        # escapes in the old value, text that mentions the key in a string
        (b'{"model":"a\\"b","prompt":"say \\"model\\": x"}', b'"a\\"b"'),
        # an integer beyond 64 bits stays exactly as written
        (b'{"model":"auto","seed":123456789012345678901234567890}', b'"auto"'),
        # non-ASCII stays as the client wrote it (raw or escaped)
        (b'{"model":"auto","prompt":"caf\\u00e9 \xc3\xa9"}', b'"auto"'),
    ],
)
def test_only_the_model_changes(raw: bytes, value: bytes) -> None:
    old = orjson.loads(raw)["model"]
    expected = raw.replace(value, b'"coder-7b"', 1)
    assert expected != raw
    assert replace_model(raw, old, "coder-7b") == expected


@pytest.mark.parametrize(
    "raw",
    [
        # a nested key of the same name: which is top-level is not certain from bytes
        b'{"model":"auto","tools":[{"parameters":{"properties":{"model":{"type":"string"}}}}]}',
        b'{"metadata":{"model":"x"},"model":"auto"}',
        # the name as a value ("role": "model" in some chat formats)
        b'{"model":"auto","messages":[{"role":"model","content":"hi"}]}',
        # the key spelled with escapes: a second top-level model may hide behind it
        b'{"model":"auto","mod\\u0065l":"auto"}',
        b'{"\\u006dodel":"auto","x":1}',
        # a duplicate key, the last one wins in the parser: never leave it behind
        b'{"model":"auto","model":"auto"}',
    ],
)
def test_unsure_is_left_to_the_encoder(raw: bytes) -> None:
    assert replace_model(raw, "auto", "coder-7b") is None


def test_a_value_that_is_not_what_was_parsed_is_left_alone() -> None:
    assert replace_model(b'{"model":"auto"}', "other", "coder-7b") is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["model", "m", "role", "x"]) | st.text(max_size=5), inner, max_size=3
        )
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(
    before=st.dictionaries(st.text(max_size=6), _json, max_size=3),
    after=st.dictionaries(st.text(max_size=6), _json, max_size=3),
    model=st.text(min_size=1, max_size=10),
    indent=st.booleans(),
    ascii_only=st.booleans(),
)
def test_never_changes_anything_but_the_top_level_model(
    before: dict[str, Any], after: dict[str, Any], model: str, indent: bool, ascii_only: bool
) -> None:
    members = {k: v for k, v in before.items() if k != "model"}
    members["model"] = model
    members.update({k: v for k, v in after.items() if k != "model"})
    raw = json.dumps(members, indent=2 if indent else None, ensure_ascii=ascii_only).encode()
    out = replace_model(raw, model, "coder-7b")
    if out is None:
        return
    pairs = _pairs(out)
    assert [k for k, _ in pairs if k == "model"] == ["model"]
    assert json.loads(out) == {**members, "model": "coder-7b"}
    # everything around the value is byte for byte the client's
    start = raw.index(json.dumps(model, ensure_ascii=ascii_only).encode(), raw.index(b'"model"'))
    assert out[:start] == raw[:start]
