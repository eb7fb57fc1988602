"""parse_completion takes the common reply shape without a helper call per value; it must read
every shape exactly as the helpers read it (the slow reading, spelled out here as the oracle)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from react_eval.model.completion import arguments_text, as_text, call_id_text, name_text, parse_completion
from react_eval.model.response import make_tool_call, split_reasoning

TEXT = st.one_of(st.text(max_size=6), st.sampled_from(["call_1", "echo", '{"a": 1}', "é", "\ud800", "", "<think>x</think>y"]))
VALUE = st.one_of(st.none(), TEXT, st.integers(-3, 3), st.floats(allow_nan=False, allow_infinity=False),
                  st.booleans(), st.lists(TEXT, max_size=2), st.dictionaries(st.sampled_from(["text", "a"]), TEXT, max_size=2))


def _oracle(message: dict[str, Any]) -> tuple[Any, ...]:
    reasoning = as_text(message.get("reasoning_content")) or as_text(message.get("reasoning")) or None
    content, think = split_reasoning(as_text(message.get("content")))
    if think and not reasoning:
        reasoning = think
    calls = []
    for tc in message["tool_calls"]:
        fn = tc["function"]
        calls.append(make_tool_call(call_id_text(tc.get("id")), name_text(fn.get("name")),
                                    arguments_text(fn.get("arguments")), len(calls)))
    return content, reasoning, calls


@settings(max_examples=400, deadline=None)
@given(content=VALUE, reasoning=VALUE, reasoning_content=VALUE,
       calls=st.lists(st.tuples(VALUE, VALUE, VALUE), max_size=3))
def test_every_shape_is_read_as_the_helpers_read_it(content, reasoning, reasoning_content, calls):
    message: dict[str, Any] = {"role": "assistant", "content": content, "reasoning": reasoning,
                               "reasoning_content": reasoning_content,
                               "tool_calls": [{"id": i, "function": {"name": n, "arguments": a}} for i, n, a in calls]}
    response = parse_completion({"choices": [{"message": message}]}, 1.0, 1)
    assert (response.content, response.reasoning, response.tool_calls) == _oracle(message)
