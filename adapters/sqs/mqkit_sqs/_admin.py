"""SNS topics and SQS queues: names to ARNs and URLs, create, delete, list.

One :class:`Resources` per client, shared by its topics and subscriptions. It caches
queue URLs and topic ARNs (computed from the account, never looked up per send), and
remembers what this client created or opened, so that resources an emulator lost in a
restart can be recreated (``recreate``; see the package docstring).

Priority bands (standard topics; ``docs/backends/sqs.md``, "Priority"). A band exists only
once something was sent at its level: :meth:`Resources.ensure_band` (a producer's first
send at a level) creates the band's SNS topic and then gives every group of the topic
found subscribed at that moment its band queue, subscribed to the band topic;
:meth:`Resources.create_group` subscribes the group's queue to the topic and then gives
the group a band queue on every band topic that exists. Each side writes before it reads,
so whichever runs second sees the other's write: a group that existed when a message was
sent at priority p has its band queue subscribed before the message is published. In
queue mode a band is a queue ``<topic>-mqkit-p<p>`` of the topic's one group.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from mqkit.driver import DEAD_LETTER_GROUP, Declared, NotFound, Unsupported

from ._errors import error_code, map_error, mapped
from ._names import BANDS, Names
from ._options import SqsOptions

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["GROUP_TAG", "Resources"]

# Queue tag naming the one group of a queue-mode topic, and the topic of a group queue.
GROUP_TAG = "mqkit-group"
TOPIC_TAG = "mqkit-topic"
_NOT_FOUND = (NotFound,)


class Resources:
    """Names, ARNs, URLs and the create/delete/list verbs of one client."""

    def __init__(self, sqs: SQSClient, sns: SNSClient | None, sts: Callable[[], Any],
                 options: SqsOptions, region: str, *,
                 custom_endpoint: bool) -> None:
        self.sqs = sqs
        self.sns = sns
        self._sts = sts
        self.options = options
        self.names = Names(options.prefix, options.queue_format, options.fifo)
        self.region = region
        self.custom_endpoint = custom_endpoint
        self.sns_mode = options.mode == "sns"
        self._account: tuple[str, str] | None = None
        self._urls: dict[str, str] = {}
        # (topic, priority) whose band this client made ready (ensure_band): it sends
        # there without looking again; forgotten with the topic or on recover.
        self._bands: set[tuple[str, int]] = set()
        # the topics and groups this client created or opened and did not delete itself
        self.declared = Declared()

    # -- identities ------------------------------------------------------------------

    def account(self) -> tuple[str, str]:
        """``(partition, account id)``: from ``account_id`` or STS GetCallerIdentity."""
        if self._account is None:
            partition = "aws-cn" if self.region.startswith("cn-") else (
                "aws-us-gov" if self.region.startswith("us-gov-") else "aws")
            account = self.options.account_id
            if account is None:
                with mapped("GetCallerIdentity"):
                    ident = self._sts().get_caller_identity()
                account = ident["Account"]
                partition = ident["Arn"].split(":")[1] or partition
            self._account = (partition, account)
        return self._account

    def topic_arn(self, topic: str) -> str:
        partition, account = self.account()
        return f"arn:{partition}:sns:{self.region}:{account}:{self.names.topic(topic)}"

    def queue_arn(self, queue: str) -> str:
        partition, account = self.account()
        return f"arn:{partition}:sqs:{self.region}:{account}:{queue}"

    def group_queue(self, topic: str, group: str) -> str:
        """The SQS queue a group reads: its own (sns mode) or the topic's (queue mode)."""
        if self.sns_mode:
            return self.names.queue(topic, group)
        return self.names.topic_queue(topic)

    def queue_url(self, queue: str) -> str:
        """The URL of ``queue`` (cached); :class:`mqkit.NotFound` when missing."""
        url = self._urls.get(queue)
        if url is None:
            with mapped(f"queue {queue!r}"):
                url = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            self._urls[queue] = url
        return url

    def forget(self, queue: str) -> None:
        self._urls.pop(queue, None)

    def _queue_exists(self, queue: str) -> bool:
        try:
            self.queue_url(queue)
        except _NOT_FOUND:
            return False
        return True

    # -- what this client knows (for recreate) ----------------------------------------

    def remember(self, topic: str, group: str | None = None) -> None:
        self.declared.remember(topic, group)

    def recreate_enabled(self) -> bool:
        if self.options.recreate is not None:
            return self.options.recreate
        return self.options.persistent is not True and self.custom_endpoint

    def recover(self, topic: str) -> bool:
        """Recreate ``topic`` and its known groups if this client knew them and
        ``recreate`` is on (a restarted emulator lost them); whether it did."""
        self.forget_bands(topic)
        groups = self.declared.groups(topic)
        if groups is None or not self.recreate_enabled():
            return False
        self.create_topic(topic)
        for group in sorted(groups):
            self.create_group(topic, group)
        return True

    # -- topics ----------------------------------------------------------------------

    def topic_exists(self, topic: str) -> bool:
        if not self.sns_mode:
            return self._queue_exists(self.names.topic_queue(topic))
        assert self.sns is not None
        try:
            self.sns.get_topic_attributes(TopicArn=self.topic_arn(topic))
        except Exception as exc:
            err = map_error(exc, f"find topic {topic!r}")
            if isinstance(err, NotFound) or error_code(exc) == "InvalidParameter":
                return False
            raise err from exc
        return True

    def create_topic(self, topic: str) -> None:
        fifo = self.names.is_fifo(topic)
        if not self.sns_mode:
            self._create_queue(self.names.topic_queue(topic), fifo, {})
        else:
            assert self.sns is not None
            attributes = {"FifoTopic": "true", "ContentBasedDeduplication": "false"} \
                if fifo else {}
            with mapped(f"create topic {topic!r}"):
                self.sns.create_topic(Name=self.names.topic(topic), Attributes=attributes,
                                      Tags=[{"Key": TOPIC_TAG, "Value": topic}])
        self.remember(topic)

    def delete_topic(self, topic: str) -> None:
        """Delete ``topic`` with its groups' queues and its bands (their topics and
        queues), bands first, so that no band outlives its topic."""
        self.declared.forget(topic)
        self.forget_bands(topic)
        if not self.names.is_fifo(topic):
            for p in BANDS:
                self._delete_native(self.names.band(topic, p))
        self._delete_native(topic)

    def _delete_native(self, topic: str) -> None:
        if not self.sns_mode:
            self._delete_queue(self.names.topic_queue(topic))
            return
        assert self.sns is not None
        arn = self.topic_arn(topic)
        try:
            subscriptions = self._subscriptions(topic)
        except _NOT_FOUND:
            return  # no topic, so no subscriptions: nothing of it is left
        for sub_arn, endpoint in subscriptions:
            queue = endpoint.rsplit(":", 1)[-1]
            if self.names.group_of(topic, queue) is not None:
                self._delete_queue(queue)
            with mapped(f"unsubscribe from {topic!r}"):
                self.sns.unsubscribe(SubscriptionArn=sub_arn)
        with mapped(f"delete topic {topic!r}"):
            self.sns.delete_topic(TopicArn=arn)

    def list_topics(self) -> list[str]:
        names: list[str] = []
        if not self.sns_mode:
            for url in self._list_queues(self.options.prefix):
                found = self.names.from_native(url.rsplit("/", 1)[-1])
                if found and not self.names.is_band(found):
                    names.append(found)
            return sorted(names)
        assert self.sns is not None
        with mapped("list topics"):
            for page in self.sns.get_paginator("list_topics").paginate():
                for item in page.get("Topics", []):
                    found = self.names.from_native(item["TopicArn"].rsplit(":", 1)[-1])
                    if found and not self.names.is_band(found):
                        names.append(found)
        return sorted(names)

    def _list_queues(self, prefix: str) -> Iterator[str]:
        with mapped("list queues"):
            for page in self.sqs.get_paginator("list_queues").paginate(
                    QueueNamePrefix=prefix, PaginationConfig={"PageSize": 1000}):
                yield from page.get("QueueUrls", [])

    def _subscriptions(self, topic: str) -> list[tuple[str, str]]:
        """``(subscription ARN, endpoint)`` of the SQS subscriptions of ``topic``."""
        assert self.sns is not None
        out: list[tuple[str, str]] = []
        with mapped(f"subscriptions of {topic!r}"):
            for page in self.sns.get_paginator("list_subscriptions_by_topic").paginate(
                    TopicArn=self.topic_arn(topic)):
                for sub in page.get("Subscriptions", []):
                    # A pending confirmation has no ARN ("PendingConfirmation").
                    arn = sub.get("SubscriptionArn", "")
                    if sub.get("Protocol") == "sqs" and arn.startswith("arn:"):
                        out.append((sub["SubscriptionArn"], sub.get("Endpoint", "")))
        return out

    def subscribed_queues(self, topic: str) -> list[str]:
        """The SQS queues subscribed to ``topic`` (every group, and plain subscribers)."""
        return [endpoint.rsplit(":", 1)[-1] for _, endpoint in self._subscriptions(topic)]

    # -- groups ----------------------------------------------------------------------

    def create_group(self, topic: str, group: str, visibility: int | None = None) -> None:
        """Create ``group``'s queue subscribed to ``topic`` (sns mode), then its band
        queue on every band of ``topic`` that exists (see the module docstring)."""
        if not self.topic_exists(topic):
            raise NotFound(f"sqs: topic {topic!r} does not exist")
        if not self.sns_mode:
            self._claim_queue_group(topic, group)
            self.remember(topic, group)
            return
        self._subscribe_group(topic, topic, group, visibility)
        if not self.names.is_fifo(topic):
            for p in BANDS:
                band = self.names.band(topic, p)
                if self.topic_exists(band):
                    self._subscribe_group(topic, band, group, visibility)
        self.remember(topic, group)

    def _subscribe_group(self, topic: str, native: str, group: str,
                         visibility: int | None = None) -> None:
        """Create ``group``'s queue on ``native`` (``topic`` or one of its bands) and
        subscribe it (raw delivery); with ``max_receive_count``, its redrive policy
        points at ``topic``'s dead-letter group, whichever band it is."""
        assert self.sns is not None
        fifo = self.names.is_fifo(topic)
        queue = self.names.queue(native, group)
        topic_arn = self.topic_arn(native)
        queue_arn = self.queue_arn(queue)
        attributes: dict[str, str] = {"Policy": json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "mqkit-sns-delivery", "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage", "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]})}
        if visibility is not None:
            attributes["VisibilityTimeout"] = str(visibility)
        dead = self.names.dead_letter(topic)
        if self.options.max_receive_count and dead != topic \
                and group != DEAD_LETTER_GROUP:
            self.create_topic(dead)
            self.create_group(dead, DEAD_LETTER_GROUP)
            attributes["RedrivePolicy"] = json.dumps({
                "deadLetterTargetArn": self.queue_arn(
                    self.names.queue(dead, DEAD_LETTER_GROUP)),
                "maxReceiveCount": self.options.max_receive_count})
        self._create_queue(queue, fifo, attributes, {TOPIC_TAG: topic, GROUP_TAG: group})
        with mapped(f"subscribe {queue!r} to {native!r}"):
            self.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                               Attributes={"RawMessageDelivery": "true"},
                               ReturnSubscriptionArn=True)

    # -- priority bands --------------------------------------------------------------

    def ensure_band(self, topic: str, priority: int) -> None:
        """Make ``topic``'s band of ``priority`` (1..9) ready for a send, once per
        client: sns mode, the band's SNS topic, then a band queue for every group
        subscribed to ``topic`` now; queue mode, the band's queue. Idempotent."""
        if (topic, priority) in self._bands:
            return
        band = self.names.band(topic, priority)
        if not self.sns_mode:
            self._create_queue(self.names.topic_queue(band), False, {},
                               {TOPIC_TAG: topic})
        else:
            assert self.sns is not None
            with mapped(f"create band {band!r}"):
                self.sns.create_topic(Name=self.names.topic(band),
                                      Tags=[{"Key": TOPIC_TAG, "Value": topic}])
            # After the band topic exists: a group created from now on finds it.
            try:
                queues = self.subscribed_queues(topic)
            except _NOT_FOUND:
                self._delete_native(band)  # the topic went: leave no band behind
                raise
            for queue in queues:
                group = self.names.group_of(topic, queue)
                if group is not None:  # a plain peer's queue gets no bands
                    self._subscribe_group(topic, band, group)
        self._bands.add((topic, priority))

    def forget_bands(self, topic: str) -> None:
        """Look at ``topic``'s bands again before the next send to one."""
        self._bands = {b for b in self._bands if b[0] != topic}

    def band_queues(self, topic: str, group: str) -> list[tuple[int, str]]:
        """``(priority, queue name)`` of the band queues ``group`` reads on ``topic``
        that exist, highest first: one GetQueueUrl per band whose URL is not cached
        (the URL is cached for ``queue_url``)."""
        if self.names.is_fifo(topic):
            return []
        found = []
        for p in BANDS:
            queue = self.band_queue(topic, group, p)
            try:
                self.queue_url(queue)
            except _NOT_FOUND:
                continue
            found.append((p, queue))
        return found

    def band_queue(self, topic: str, group: str, priority: int) -> str:
        """The SQS queue of ``group``'s band ``priority`` on ``topic`` (either mode)."""
        band = self.names.band(topic, priority)
        if self.sns_mode:
            return self.names.queue(band, group)
        return self.names.topic_queue(band)

    def _claim_queue_group(self, topic: str, group: str) -> None:
        """Queue mode: the queue's one group is recorded in its ``mqkit-group`` tag."""
        url = self.queue_url(self.names.topic_queue(topic))
        with mapped(f"tags of {topic!r}"):
            tags = self.sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        current = tags.get(GROUP_TAG)
        if current is None:
            with mapped(f"tag {topic!r}"):
                self.sqs.tag_queue(QueueUrl=url, Tags={GROUP_TAG: group})
        elif current != group:
            raise Unsupported(
                "sqs", "groups", f"queue mode: topic {topic!r} is one SQS queue with one "
                f"group ({current!r}); use mode=sns for several groups")

    def group_exists(self, topic: str, group: str) -> bool:
        if self.sns_mode:
            return self._queue_exists(self.names.queue(topic, group))
        try:
            url = self.queue_url(self.names.topic_queue(topic))
        except _NOT_FOUND:
            return False
        with mapped(f"tags of {topic!r}"):
            tags = self.sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        return tags.get(GROUP_TAG) == group

    def delete_group(self, topic: str, group: str) -> None:
        self.declared.forget(topic, group)
        if not self.sns_mode:
            if self.group_exists(topic, group):
                url = self.queue_url(self.names.topic_queue(topic))
                with mapped(f"untag {topic!r}"):
                    self.sqs.untag_queue(QueueUrl=url, TagKeys=[GROUP_TAG])
            return
        self._unsubscribe_group(topic, group)
        if not self.names.is_fifo(topic):
            for p in BANDS:  # after the plain queue: no producer adds a band to it now
                self._unsubscribe_group(self.names.band(topic, p), group, band=True)

    def _unsubscribe_group(self, native: str, group: str, *, band: bool = False) -> None:
        """Unsubscribe ``group``'s queue on ``native`` (a topic or a band) and delete
        it; a band queue only when it exists (one GetQueueUrl for a band never made)."""
        queue = self.names.queue(native, group)
        if band and not self._queue_exists(queue):
            return
        if self.topic_exists(native):
            endpoint = self.queue_arn(queue)
            assert self.sns is not None
            for sub_arn, end in self._subscriptions(native):
                if end == endpoint:
                    with mapped(f"unsubscribe {queue!r}"):
                        self.sns.unsubscribe(SubscriptionArn=sub_arn)
        self._delete_queue(queue)

    def list_groups(self, topic: str) -> list[str]:
        if not self.topic_exists(topic):
            raise NotFound(f"sqs: topic {topic!r} does not exist")
        if not self.sns_mode:
            url = self.queue_url(self.names.topic_queue(topic))
            with mapped(f"tags of {topic!r}"):
                tags = self.sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
            return [tags[GROUP_TAG]] if GROUP_TAG in tags else []
        groups = {self.names.group_of(topic, q) for q in self.subscribed_queues(topic)}
        return sorted(g for g in groups if g)

    # -- queues ----------------------------------------------------------------------

    def _create_queue(self, queue: str, fifo: bool, attributes: dict[str, str],
                      tags: dict[str, str] | None = None) -> str:
        self.forget(queue)  # a cached URL may name a queue the service lost
        if self._queue_exists(queue):
            url = self._urls[queue]
            try:
                if attributes:
                    with mapped(f"configure queue {queue!r}"):
                        self.sqs.set_queue_attributes(QueueUrl=url,
                                                      Attributes=cast(Any, attributes))
                return url
            except _NOT_FOUND:
                self.forget(queue)  # deleted meanwhile: create it below
        attrs = {"MessageRetentionPeriod": str(self.options.retention), **attributes}
        if fifo:
            attrs["FifoQueue"] = "true"
        with mapped(f"create queue {queue!r}"):
            url = self.sqs.create_queue(QueueName=queue, Attributes=cast(Any, attrs),
                                        tags=tags or {})["QueueUrl"]
        self._urls[queue] = url
        return url

    def _delete_queue(self, queue: str) -> None:
        try:
            url = self.queue_url(queue)
        except _NOT_FOUND:
            return
        try:
            with mapped(f"delete queue {queue!r}"):
                self.sqs.delete_queue(QueueUrl=url)
        except _NOT_FOUND:
            pass
        self.forget(queue)

    def queue_counts(self, queue: str) -> tuple[int, int]:
        """``(messages not deleted, of which in flight)`` of ``queue``."""
        url = self.queue_url(queue)
        with mapped(f"stats of {queue!r}"):
            attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"]).get("Attributes", {})
        visible = int(attrs.get("ApproximateNumberOfMessages", 0))
        hidden = int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
        delayed = int(attrs.get("ApproximateNumberOfMessagesDelayed", 0))
        return visible + hidden + delayed, hidden

    def purge(self, queue: str) -> None:
        url = self.queue_url(queue)
        with mapped(f"purge {queue!r}"):
            self.sqs.purge_queue(QueueUrl=url)
