"""The SPI's DeliveryCounts: the delivery-count memory RabbitMQ's and NATS's drivers share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqkit.driver import DeliveryCounts


def test_a_message_back_counts_one_more_and_never_less_than_the_broker_says() -> None:
    counts = DeliveryCounts(10)
    assert counts.next("a") == 1
    assert counts.next("a") == 2
    assert counts.next("a", at_least=1) == 3   # a broker that says 1 again is overruled
    assert counts.next("a", at_least=7) == 7   # a broker that knows more wins
    assert counts.next("b", at_least=2) == 2   # redelivered, never seen here
    counts.forget("a")
    assert counts.next("a") == 1


@given(st.lists(st.integers(0, 30), max_size=300), st.integers(1, 8))
def test_memory_is_bounded_and_forgets_the_least_recently_seen(keys: list[int],
                                                              limit: int) -> None:
    counts = DeliveryCounts(limit)
    model: dict[int, int] = {}
    order: list[int] = []
    for key in keys:
        expected = model.get(key, 0) + 1
        assert counts.next(key) == expected
        model[key] = expected
        if key in order:
            order.remove(key)
        order.append(key)
        if len(order) > limit:
            del model[order.pop(0)]
        assert len(counts) == len(model) <= limit


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        DeliveryCounts(0)
