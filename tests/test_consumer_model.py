"""A stateful test of the consumer core against a small model, on ``memory://``.

Hypothesis drives one producer and up to two consumers of one group through sends,
``receive``, per-message ``ack``/``nack``/``reject``, iteration that breaks early,
``run`` loops (handlers that succeed, fail, or call ``stop``), ``close`` and lease
expiry (the memory broker's clock is moved forward). The model says, for every message
id, whether it is settled for good and which delivery count its next delivery must carry.
Checked on every step and at the end:

* nothing acked or rejected (and handed to the broker) is delivered again;
* nothing unsettled is lost: at the end every such message is delivered once more;
* first decision wins: a second decision raises ``MessageStateError``;
* ``delivery_count`` is exactly one more per nack, lease expiry or close, and never rises
  for a release (stop, end of iteration): memory declares ``release``;
* ``run`` always returns after ``stop`` (and with ``idle_timeout``).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import mqkit
import mqkit.memory._broker as memory_broker

LEASE = 30.0  # never reached in real time: leases run out only when the clock is moved
PREFETCH = 4
FAST = mqkit.RetryPolicy(max_attempts=3, initial_backoff=0.0, jitter=0.0, dead_letter=False)


class _Clock:
    """The memory broker's ``time`` module, with a monotonic clock that can jump."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    @staticmethod
    def time() -> float:
        return time.time()


class ConsumerModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = _Clock()
        memory_broker.time = self.clock  # type: ignore[attr-defined,assignment]
        self.client = mqkit.connect(f"memory://model-{uuid.uuid4().hex[:8]}")
        self.client.admin.create_topic("t")
        self.client.admin.create_group("t", "g")
        self.producer = self.client.producer("t")
        self.consumers: list[mqkit.Consumer] = []
        self.sent: set[str] = set()
        self.settled: set[str] = set()  # acked or rejected: never to come back
        self.next_count: dict[str, int] = {}  # the delivery count the next delivery has
        self.held: dict[str, tuple[int, mqkit.ReceivedMessage]] = {}  # id -> (consumer, msg)
        self.decided: list[mqkit.ReceivedMessage] = []
        # Messages whose lease ran out while undecided: still in the consumer's hand (they
        # count against its prefetch until decided), but deciding them changes nothing.
        self.stale: list[tuple[int, mqkit.ReceivedMessage]] = []

    # -- helpers -------------------------------------------------------------------------

    def _available(self) -> int:
        return len(self.sent) - len(self.settled) - len(self.held)

    def _room(self, i: int) -> int:
        return (PREFETCH - sum(1 for c, _ in self.held.values() if c == i)
                - sum(1 for c, _ in self.stale if c == i))

    def _got(self, i: int, msg: mqkit.ReceivedMessage) -> None:
        """Check one delivery against the model, and hold it."""
        assert msg.id in self.sent, "a message nobody sent"
        assert msg.id not in self.settled, f"{msg.id} was settled and came back"
        assert msg.id not in self.held, f"{msg.id} delivered twice at once"
        assert msg.delivery_count == self.next_count[msg.id], (
            f"{msg.id}: delivery_count {msg.delivery_count}, model says "
            f"{self.next_count[msg.id]}")
        self.held[msg.id] = (i, msg)

    def _decided(self, msg: mqkit.ReceivedMessage, kind: str) -> None:
        assert msg.id is not None
        del self.held[msg.id]
        if kind == "nack":
            self.next_count[msg.id] += 1
        else:
            self.settled.add(msg.id)
        self.decided.append(msg)

    # -- rules ---------------------------------------------------------------------------

    @rule(n=st.integers(1, 5))
    def send(self, n: int) -> None:
        ids = self.producer.send_batch([f"m{len(self.sent) + k}".encode() for k in range(n)])
        for ident in ids:
            self.sent.add(ident)
            self.next_count[ident] = 1

    @precondition(lambda self: len(self.consumers) < 2)
    @rule()
    def open_consumer(self) -> None:
        self.consumers.append(self.client.consumer("t", "g", lease=LEASE, prefetch=PREFETCH))

    @precondition(lambda self: self.consumers)
    @rule(data=st.data(), n=st.integers(1, 6))
    def receive(self, data: st.DataObject, n: int) -> None:
        i = data.draw(st.integers(0, len(self.consumers) - 1))
        if self._room(i) <= 0:
            return  # receive would wait for a decision of this very test
        expect = min(n, self._room(i), self._available())
        got = self.consumers[i].receive(n, timeout=1.0 if expect else 0.0)
        assert len(got) <= min(n, self._room(i))
        if expect:
            assert got, f"{self._available()} available, receive gave nothing"
        for msg in got:
            self._got(i, msg)

    @precondition(lambda self: self.held)
    @rule(data=st.data(), kind=st.sampled_from(["ack", "nack", "reject"]), wait=st.booleans())
    def decide(self, data: st.DataObject, kind: str, wait: bool) -> None:
        ident = data.draw(st.sampled_from(sorted(self.held)))
        _, msg = self.held[ident]
        getattr(msg, kind)(wait=wait)
        self._decided(msg, kind)

    @precondition(lambda self: self.stale)
    @rule(data=st.data(), kind=st.sampled_from(["ack", "nack", "reject"]))
    def decide_stale(self, data: st.DataObject, kind: str) -> None:
        """A decision on a message whose lease ran out is taken and does nothing: the
        broker already gave the message to another delivery."""
        k = data.draw(st.integers(0, len(self.stale) - 1))
        _, msg = self.stale.pop(k)
        getattr(msg, kind)()
        self.decided.append(msg)

    @precondition(lambda self: self.decided)
    @rule(data=st.data(), kind=st.sampled_from(["ack", "nack", "reject"]))
    def second_decision_loses(self, data: st.DataObject, kind: str) -> None:
        msg = data.draw(st.sampled_from(self.decided[-20:]))
        with pytest.raises(mqkit.MessageStateError):
            getattr(msg, kind)()

    @precondition(lambda self: self.consumers and self._available() > 0)
    @rule(data=st.data())
    def iterate_and_break(self, data: st.DataObject) -> None:
        """Take one message by iteration and break: what it held besides goes back,
        uncounted."""
        i = data.draw(st.integers(0, len(self.consumers) - 1))
        if self._room(i) <= 0:
            return
        consumer = self.consumers[i]
        # Iteration has no timeout: if the model is wrong about what is available, the
        # watchdog closes the consumer, which ends the loop (and fails the step).
        watchdog = threading.Timer(5.0, consumer.close)
        watchdog.start()
        try:
            for msg in consumer:
                self._got(i, msg)
                msg.ack()
                self._decided(msg, "ack")
                break
            else:
                pytest.fail(f"iteration ended with {self._available()} messages available")
        finally:
            watchdog.cancel()

    @precondition(lambda self: self.consumers and self._available() > 0)
    @rule(data=st.data(), plan=st.lists(st.sampled_from(["ok", "fail", "stop"]),
                                        min_size=1, max_size=6))
    def run(self, data: st.DataObject, plan: list[str]) -> None:
        """A run loop whose handler follows ``plan`` message by message (then succeeds);
        "stop" acks its message and asks the loop to stop: the rest go back uncounted."""
        i = data.draw(st.integers(0, len(self.consumers) - 1))
        if self._room(i) <= 0:
            return
        consumer = self.consumers[i]
        steps = iter(plan)

        def handler(msg: mqkit.ReceivedMessage) -> None:
            self._got(i, msg)
            step = next(steps, "ok")
            assert msg.id is not None
            if step == "fail":
                del self.held[msg.id]
                if msg.delivery_count >= FAST.max_attempts:
                    self.settled.add(msg.id)  # rejected (dead_letter=False)
                else:
                    self.next_count[msg.id] += 1
                raise RuntimeError("planned failure")
            del self.held[msg.id]
            self.settled.add(msg.id)
            if step == "stop":
                consumer.stop()

        started = time.monotonic()
        stats = consumer.run(handler, retry=FAST, idle_timeout=0.2,
                             stop_after=len(plan) + 2)
        assert time.monotonic() - started < 10, "run did not return promptly"
        assert stats.handled >= 1 or self._available() == 0

    @precondition(lambda self: self.consumers)
    @rule(data=st.data())
    def close_consumer(self, data: st.DataObject) -> None:
        """Close hands decisions over; undecided messages come back, counted (the
        broker redelivers what a closed consumer held)."""
        i = data.draw(st.integers(0, len(self.consumers) - 1))
        self.consumers[i].close()
        for ident, (c, _) in list(self.held.items()):
            if c == i:
                del self.held[ident]
                self.next_count[ident] += 1
        # Later consumers move down one place.
        self.held = {k: (c - 1 if c > i else c, m) for k, (c, m) in self.held.items()}
        self.stale = [(c - 1 if c > i else c, m) for c, m in self.stale if c != i]
        del self.consumers[i]

    @precondition(lambda self: self.held)
    @rule()
    def leases_run_out(self) -> None:
        """Decisions are handed over, then the broker's clock passes every lease."""
        for consumer in self.consumers:
            consumer.flush_settlements()
        self.clock.offset += LEASE + 1
        for ident, held in self.held.items():
            self.next_count[ident] += 1
            self.stale.append(held)
        self.held.clear()

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def in_flight_matches(self) -> None:
        for i, consumer in enumerate(self.consumers):
            held = sum(1 for c, _ in self.held.values() if c == i)
            held += sum(1 for c, _ in self.stale if c == i)
            assert consumer.in_flight >= held

    def teardown(self) -> None:
        try:
            for consumer in self.consumers:
                consumer.flush_settlements()
                consumer.close()
            # Held messages go back with the close: counted as a delivery.
            for ident in self.held:
                self.next_count[ident] += 1
            self.held.clear()
            seen: dict[str, int] = {}
            with self.client.consumer("t", "g", lease=LEASE, prefetch=100) as last:
                while True:
                    got = last.receive(100, timeout=0.3)
                    if not got:
                        break
                    for msg in got:
                        assert msg.id not in self.settled, f"{msg.id} settled, came back"
                        assert msg.id not in seen, f"{msg.id} twice in the final drain"
                        assert msg.delivery_count == self.next_count[msg.id or ""], msg.id
                        seen[msg.id or ""] = msg.delivery_count
                    last.ack(got)
            lost = self.sent - self.settled - set(seen)
            assert not lost, f"unsettled messages lost: {sorted(lost)}"
        finally:
            self.producer.close()
            self.client.close()
            memory_broker.time = time  # type: ignore[attr-defined]


ConsumerModel.TestCase.settings = settings(
    max_examples=30, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_consumer_model = ConsumerModel.TestCase


def test_model_catches_a_counted_release(monkeypatch: Any) -> None:
    """The model is not vacuous: a memory broker that counted releases fails it."""
    from mqkit.memory import _state

    original = _state.Group.settle

    def counting(self: Any, deliveries: Any, requeue: bool, delay: Any, now: float, *,
                 release: bool = False) -> bool:
        return original(self, deliveries, requeue, delay, now, release=False)

    monkeypatch.setattr(_state.Group, "settle", counting)
    machine = ConsumerModel()
    try:
        machine.send(3)
        machine.open_consumer()
        with pytest.raises(AssertionError, match="delivery_count"):
            machine.iterate_and_break(_Data([0]))
            machine.receive(_Data([0]), 3)
    finally:
        try:
            machine.teardown()
        except AssertionError:
            pass


class _Data:
    """A stand-in for ``st.data()`` that hands out given values in order."""

    def __init__(self, values: list[Any]) -> None:
        self._values = list(values)

    def draw(self, _strategy: Any) -> Any:
        return self._values.pop(0)
