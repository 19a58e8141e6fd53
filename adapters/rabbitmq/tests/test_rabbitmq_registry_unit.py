"""The registry's state and snapshot decoding, without a broker."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from mqkit_rabbitmq._registry import _decode, _State

_names = st.sampled_from(["a", "b", "c"])
_entries = st.lists(st.tuples(st.sampled_from(["create", "delete", "marker"]), _names,
                              st.sampled_from(["", "g1", "g2"])), max_size=40)


def _model(entries: list[tuple[str, str, str]]) -> tuple[set[str], set[tuple[str, str]]]:
    """The registry's meaning, entry by entry: a topic's deletion ends its groups."""
    topics: set[str] = set()
    groups: set[tuple[str, str]] = set()
    for op, topic, group in entries:
        if op == "marker":
            continue
        if group:
            if op == "create":
                groups.add((topic, group))
            else:
                groups.discard((topic, group))
        elif op == "create":
            topics.add(topic)
        else:
            topics.discard(topic)
            groups = {p for p in groups if p[0] != topic}
    return topics, groups


@given(_entries, st.integers(0, 40))
def test_a_snapshot_then_the_rest_equals_the_whole_replay(
        entries: list[tuple[str, str, str]], cut: int) -> None:
    whole = _State()
    for op, topic, group in entries:
        if op != "marker":
            whole.apply(op, topic, group)
    assert (whole.topics, whole.groups) == _model(entries)

    head = _State()
    for op, topic, group in entries[:cut]:
        if op != "marker":
            head.apply(op, topic, group)
    body = json.dumps({"offset": cut, "marker": "m", "topics": sorted(head.topics),
                       "groups": sorted([t, g] for t, g in head.groups)}).encode()
    resumed = _decode(body)
    assert resumed is not None and (resumed.offset, resumed.marker) == (cut, "m")
    for op, topic, group in entries[cut:]:
        if op != "marker":
            resumed.apply(op, topic, group)
    assert (resumed.topics, resumed.groups) == (whole.topics, whole.groups)


@given(st.one_of(st.binary(max_size=200),
                 st.recursive(st.none() | st.booleans() | st.floats() | st.integers()
                              | st.text(max_size=5),
                              lambda c: st.lists(c, max_size=4)
                              | st.dictionaries(st.sampled_from(
                                  ["offset", "marker", "topics", "groups", "x"]), c,
                                  max_size=5),
                              max_leaves=20).map(lambda v: json.dumps(v).encode())))
def test_any_snapshot_body_decodes_to_a_usable_state_or_none(body: bytes) -> None:
    state = _decode(body)
    if state is not None:  # only a body of exactly the shape written, and read as written
        data = json.loads(body)
        assert state.offset == data["offset"] >= 0 and state.marker == data["marker"] != ""
        assert state.topics == set(data["topics"])
        assert state.groups == {(t, g) for t, g in data["groups"]}
        assert all(isinstance(t, str) for t in state.topics)
        assert all(isinstance(t, str) and isinstance(g, str) for t, g in state.groups)
