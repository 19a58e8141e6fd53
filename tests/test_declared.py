"""mqkit.driver.Declared: what a client declared, for a driver to re-create after a
broker restart that lost it (Redis without AOF, a restarted moto)."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from mqkit.driver import Declared

NAMES = st.sampled_from(["t1", "t2", "t3"])
GROUPS = st.one_of(st.none(), st.sampled_from(["g1", "g2"]))
OPS = st.lists(st.tuples(st.booleans(), NAMES, GROUPS), max_size=30)


def test_remember_forget_and_what_comes_back() -> None:
    d = Declared()
    assert d.groups("t") is None and len(d) == 0
    d.remember("t")
    assert d.groups("t") == frozenset()
    d.remember("t", "a")
    d.remember("t", "b")
    d.remember("u", "a")
    assert d.snapshot() == {"t": frozenset({"a", "b"}), "u": frozenset({"a"})}
    d.forget("t", "a")           # a group deleted by the client: never re-created
    assert d.groups("t") == frozenset({"b"})
    d.forget("t")                 # the topic deleted: its groups go with it
    assert d.groups("t") is None
    d.forget("nope", "g")         # forgetting the unknown is harmless
    assert d.snapshot() == {"u": frozenset({"a"})}
    assert repr(d) == "Declared(1 topics, 1 groups)"


def test_snapshot_is_a_copy() -> None:
    d = Declared()
    d.remember("t", "a")
    snap = d.snapshot()
    d.remember("t", "b")
    assert snap == {"t": frozenset({"a"})}


@given(OPS)
def test_matches_a_plain_model(ops: list[tuple[bool, str, str | None]]) -> None:
    d = Declared()
    model: dict[str, set[str]] = {}
    for remember, topic, group in ops:
        if remember:
            d.remember(topic, group)
            model.setdefault(topic, set()).update([group] if group else [])
        elif group is None:
            d.forget(topic)
            model.pop(topic, None)
        else:
            d.forget(topic, group)
            model.get(topic, set()).discard(group)
    assert d.snapshot() == {t: frozenset(g) for t, g in model.items()}


def test_threads_do_not_lose_entries() -> None:
    d = Declared()

    def work(n: int) -> None:
        for i in range(500):
            d.remember(f"t{i % 7}", f"g{n}-{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(g) for g in d.snapshot().values()) == 4 * 500
