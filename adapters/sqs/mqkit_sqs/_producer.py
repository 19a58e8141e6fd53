"""TopicDriver: SNS PublishBatch (sns mode) or SQS SendMessageBatch (queue mode).

One request per batch of up to 10 messages. A delayed message in sns mode is sent
straight to every SQS queue subscribed to the topic (SNS has no per-message delay; see
the package docstring). A batch whose messages total more than 256 KiB (a request's
limit) goes in several requests. Per-entry failures are reported by index through
:class:`mqkit.SendBatchError`; a batch of which nothing was accepted and every entry
may be retried raises :class:`mqkit.Unavailable`, so that the portable layer retries
it whole.
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
        try:
            self._send(messages, encoded)
        except NotFound:
            if self._res.recover(self.topic):
                raise Unavailable(
                    f"sqs: topic {self.topic!r} vanished (the service lost its state); "
                    "recreated it with its groups") from None
            raise

    def _send(self, messages: Sequence[Message], encoded: list[Encoded]) -> None:
        total = len(messages)
        plan: list[tuple[Callable[[Sequence[int]], _Failed], list[int]]] = []
        if not self._res.sns_mode:
            url = self._res.queue_url(self._res.names.topic_queue(self.topic))
            plan.append((partial(self._send_queue, url, messages=messages, encoded=encoded),
                         list(range(total))))
        else:
            now = [i for i, m in enumerate(messages) if not delay_seconds(m.delay)]
            later = [i for i, m in enumerate(messages) if delay_seconds(m.delay)]
            if now:
                plan.append((partial(self._publish, messages=messages, encoded=encoded), now))
            if later:
                for queue in self._res.subscribed_queues(self.topic):
                    url = self._res.queue_url(queue)
                    plan.append((partial(self._send_queue, url, messages=messages,
                                         encoded=encoded), later))
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

    def _publish(self, indices: Sequence[int], *, messages: Sequence[Message],
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
            reply = self._res.sns.publish_batch(TopicArn=self._arn,
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
