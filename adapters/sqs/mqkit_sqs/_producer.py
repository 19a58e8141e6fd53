"""TopicDriver: SNS PublishBatch (sns mode) or SQS SendMessageBatch (queue mode).

One request per batch of up to 10 messages. A delayed message in sns mode is sent
straight to every SQS queue subscribed to the topic (SNS has no per-message delay; see
the package docstring). A batch whose messages total more than 256 KiB (a request's
limit) goes in several requests. Per-entry failures are reported by index through
:class:`mqkit.SendBatchError`; a batch of which nothing was accepted and every entry
may be retried raises :class:`mqkit.Unavailable`, so that the portable layer retries
it whole.

A message with priority p in 1..9 goes to the topic's band p (``Resources.ensure_band``
makes it ready on the first send at p: the band's SNS topic and a band queue per group,
or the band's queue in queue mode), a delayed one straight to the queues subscribed to
the band topic; priority 0 or none to the topic as before. FIFO topics refuse a priority
above 0 (:class:`mqkit.Unsupported`: see ``fifo_capabilities``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar

from mqkit.driver import (
    Message,
    MQError,
    NotFound,
    SendBatchError,
    TopicDriver,
    Unavailable,
    Unsupported,
)

from ._admin import Resources
from ._errors import map_error, mapped
from ._wire import MAX_SIZE, Encoded, dedup_id, delay_seconds, encode

__all__ = ["SqsTopic", "by_size"]

T = TypeVar("T")
_Failed = dict[int, tuple[str, str]]  # index -> (AWS error code, message)
# FIFO message group of messages without a key: one group, so they keep their order.
DEFAULT_GROUP_ID = "mqkit"


class SqsTopic(TopicDriver):
    def __init__(self, resources: Resources, topic: str, max_size: int) -> None:
        self._res = resources
        self.topic = topic
        self._fifo = resources.names.is_fifo(topic)
        self._max_size = max_size
        self._arn = resources.topic_arn(topic) if resources.sns_mode else ""

    def send_batch(self, messages: Sequence[Message]) -> None:
        encoded = [encode(m, limit=self._max_size) for m in messages]
        for m in messages:
            if m.delay and self._fifo:
                raise Unsupported("sqs", "delay", "FIFO queues take no per-message "
                                  "delay (set DelaySeconds on the queue instead)")
            if m.priority and self._fifo:
                raise Unsupported("sqs", "priority", "a FIFO topic keeps one order per "
                                  "key; priority bands would break it")
        try:
            self._send(messages, encoded)
        except NotFound:
            banded = any(m.priority for m in messages)
            if banded:
                self._res.forget_bands(self.topic)  # a band went: make it again
            if self._res.recover(self.topic):
                raise Unavailable(
                    f"sqs: topic {self.topic!r} vanished (the service lost its state); "
                    "recreated it with its groups") from None
            if banded and self._res.topic_exists(self.topic):
                raise Unavailable(
                    f"sqs: a priority band of {self.topic!r} vanished (deleted with the "
                    "topic, or the service lost it); it is made again on retry") from None
            raise

    def _send(self, messages: Sequence[Message], encoded: list[Encoded]) -> None:
        total = len(messages)
        plan: list[tuple[Callable[[Sequence[int]], _Failed], list[int]]] = []
        if not any(m.priority for m in messages):
            self._plan(self.topic, range(total), messages, encoded, plan)
        else:
            bands: dict[int, list[int]] = {}
            for i, m in enumerate(messages):
                bands.setdefault(m.priority or 0, []).append(i)
            for p in sorted(bands, reverse=True):
                if p:
                    self._res.ensure_band(self.topic, p)
                self._plan(self._res.names.band(self.topic, p), bands[p], messages,
                           encoded, plan)
        failures: dict[int, MQError] = {}
        accepted = False
        for call, indices in plan:
            for chunk in by_size(indices, encoded):
                try:
                    failed = call(chunk)
                except MQError as exc:
                    if not accepted:
                        raise  # nothing is known to be sent: the caller may retry it all
                    failures.update(dict.fromkeys(chunk, exc))
                    continue
                accepted = accepted or len(failed) < len(chunk)
                failures.update({i: _entry_error(code, text, self.topic)
                                 for i, (code, text) in failed.items()})
        if not failures:
            return
        if len(failures) == total and not accepted and all(
                isinstance(e, Unavailable) for e in failures.values()):
            raise next(iter(failures.values()))  # every entry may be retried
        raise SendBatchError(failures, total)

    def _plan(self, native: str, indices: Sequence[int], messages: Sequence[Message],
              encoded: list[Encoded],
              plan: list[tuple[Callable[[Sequence[int]], _Failed], list[int]]]) -> None:
        """Add the requests that send ``indices`` to ``native`` (the topic or a band)."""
        if not self._res.sns_mode:
            url = self._res.queue_url(self._res.names.topic_queue(native))
            plan.append((partial(self._send_queue, url, messages=messages, encoded=encoded),
                         list(indices)))
            return
        now = [i for i in indices if not delay_seconds(messages[i].delay)]
        later = [i for i in indices if delay_seconds(messages[i].delay)]
        if now:
            arn = self._arn if native == self.topic else self._res.topic_arn(native)
            plan.append((partial(self._publish, arn, messages=messages, encoded=encoded),
                         now))
        if later:
            for queue in self._res.subscribed_queues(native):
                url = self._res.queue_url(queue)
                plan.append((partial(self._send_queue, url, messages=messages,
                                     encoded=encoded), later))

    def _publish(self, arn: str, indices: Sequence[int], *, messages: Sequence[Message],
                 encoded: list[Encoded]) -> _Failed:
        entries: list[Any] = []
        for i in indices:
            entry: dict[str, Any] = {"Id": str(i), "Message": encoded[i].body,
                                     "MessageAttributes": encoded[i].attributes}
            if self._fifo:
                entry["MessageGroupId"] = messages[i].key or DEFAULT_GROUP_ID
                entry["MessageDeduplicationId"] = dedup_id(messages[i])
            entries.append(entry)
        assert self._res.sns is not None
        with mapped(f"publish to {self.topic!r}"):
            reply = self._res.sns.publish_batch(TopicArn=arn,
                                                PublishBatchRequestEntries=entries)
        return {int(f["Id"]): (f.get("Code", ""), f.get("Message", ""))
                for f in reply.get("Failed", [])}

    def _send_queue(self, url: str, indices: Sequence[int], *, messages: Sequence[Message],
                    encoded: list[Encoded]) -> _Failed:
        entries: list[Any] = []
        for i in indices:
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": encoded[i].body,
                                     "MessageAttributes": encoded[i].attributes}
            delay = delay_seconds(messages[i].delay)
            if delay:
                entry["DelaySeconds"] = delay
            if self._fifo:
                entry["MessageGroupId"] = messages[i].key or DEFAULT_GROUP_ID
                entry["MessageDeduplicationId"] = dedup_id(messages[i])
            entries.append(entry)
        with mapped(f"send to {self.topic!r}"):
            reply = self._res.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        return {int(f["Id"]): (f.get("Code", ""), f.get("Message", ""))
                for f in reply.get("Failed", [])}

    def close(self) -> None:
        return None

    def as_(self, kind: type[T]) -> T | None:
        client = self._res.sns if self._res.sns_mode else self._res.sqs
        return client if isinstance(client, kind) else None


def by_size(indices: Sequence[int], encoded: Sequence[Encoded],
            limit: int = MAX_SIZE) -> Iterator[list[int]]:
    """Split ``indices`` into requests whose messages total at most ``limit`` bytes:
    SNS PublishBatch and SQS SendMessageBatch cap a request's payload at 256 KiB."""
    chunk: list[int] = []
    size = 0
    for i in indices:
        if chunk and size + encoded[i].size > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(i)
        size += encoded[i].size
    if chunk:
        yield chunk


def _entry_error(code: str, text: str, topic: str) -> MQError:
    from botocore.exceptions import ClientError

    native = ClientError({"Error": {"Code": code, "Message": text}}, "SendBatchEntry")
    err = map_error(native, f"send to {topic!r}")
    err.__cause__ = native
    return err
