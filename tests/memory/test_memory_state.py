"""The pure state machine behind memory://, on a simulated clock (no sleeps)."""

from __future__ import annotations

from mqkit.driver import Delivery, Message
from mqkit.memory._state import Group, Member, Topic


def _topic_with_group(*, lease: float = 10.0, prefetch: int = 1000) -> tuple[Topic, Group,
                                                                             Member]:
    topic = Topic("t", None)
    group = topic.groups["g"] = topic.new_group("g", False, 0.0)
    return topic, group, Member(group, prefetch, lease)


def _send(topic: Topic, now: float, *messages: Message) -> None:
    entries, plain = topic.append(messages, now, 1000.0 + now, 120.0)
    for group in topic.groups.values():
        group.add(entries, now, plain)


def _bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [d.message.body for d in deliveries]


def test_leases_expire_on_the_clock_and_extend_moves_the_deadline() -> None:
    topic, group, member = _topic_with_group(lease=10)
    _send(topic, 0, Message(b"a"), Message(b"b"))
    _, b = group.take(member, 10, 0)
    assert group.next_due() == 10
    group.extend([b], 50, 5)
    assert group.take(member, 10, 9.99) == []
    [again] = group.take(member, 10, 10)
    assert again.message.body == b"a" and again.delivery_count == 2
    assert group.next_due() == 20  # the redelivery's lease
    group.settle([again], False, None, 11)
    assert group.take(member, 10, 54.9) == []
    assert _bodies(group.take(member, 10, 55)) == [b"b"]
    assert member.held == 1 and group.in_flight == 1 and group.depth(56) == 1


def test_delayed_messages_become_due() -> None:
    topic, group, member = _topic_with_group()
    _send(topic, 0, Message(b"d", delay=5), Message(b"n"))
    assert group.next_due() == 5
    [n] = group.take(member, 10, 0)
    group.settle([n], True, 2.0, 1)  # nack with a delay
    assert group.take(member, 10, 2.9) == []
    assert _bodies(group.take(member, 10, 3)) == [b"n"]
    assert _bodies(group.take(member, 10, 5)) == [b"d"]


def test_lease_heap_stays_bounded_while_one_lease_is_held_for_long() -> None:
    topic, group, member = _topic_with_group(lease=1e9)
    _send(topic, 0, Message(b"stuck"))
    group.take(member, 1, 0)  # held, never settled
    for i in range(5000):
        _send(topic, i, Message(b"x"))
        got = group.take(member, 1, i)
        group.settle(got, False, None, i)
    assert len(group.leases) < 200 and group.in_flight == 1


def test_release_requeues_only_the_members_leases() -> None:
    topic, group, one = _topic_with_group()
    two = Member(group, 1000, 10)
    _send(topic, 0, *[Message(bytes([i])) for i in range(4)])
    mine, theirs = group.take(one, 2, 0), group.take(two, 2, 0)
    group.extend(mine[:1], 30, 1)
    assert group.release(one, 2)
    assert (one.held, two.held, group.in_flight) == (0, 2, 2)
    assert _bodies(group.take(two, 10, 3)) == [b"\x00", b"\x01"]
    assert not group.release(one, 4)
    assert theirs[0].delivery_count == 1


def test_foreign_and_stale_handles_are_ignored() -> None:
    topic, group, member = _topic_with_group()
    other_topic, other_group, other_member = _topic_with_group()
    _send(topic, 0, Message(b"a"))
    _send(other_topic, 0, Message(b"z"))
    [a] = group.take(member, 1, 0)
    [z] = other_group.take(other_member, 1, 0)
    fake = Delivery(Message(b"f"), "t", object())
    assert not group.settle([z, fake], True, None, 1)
    assert group.in_flight == 1 and other_group.in_flight == 1
    group.settle([a], False, None, 1)
    assert not group.settle([a], True, None, 2)
    assert group.depth(3) == 0


def test_dedup_window_slides() -> None:
    topic, group, member = _topic_with_group()
    _send(topic, 0, Message(b"1", id="x"))
    _send(topic, 119, Message(b"2", id="x"))
    _send(topic, 120, Message(b"3", id="x"))  # 120 s after the first: window passed
    _send(topic, 121, Message(b"4", id="x"))
    assert _bodies(group.take(member, 10, 200)) == [b"1", b"3"]
