"""mqkit's AWS adapter (boto3): SNS topics fanning out to SQS queues, or SQS queues
alone, for ``sqs://`` and ``sns+sqs://`` URLs.

Words
-----
==============  =================================================================
mqkit           AWS
==============  =================================================================
topic           ``mode=sns`` (default): SNS topic ``<prefix><topic>``.
                ``mode=queue``: SQS queue ``<prefix><topic>``
group           ``mode=sns``: SQS queue ``<prefix>`` + ``queue_format`` (default
                ``{topic}-{group}``) subscribed to the topic with raw message
                delivery: every group gets every message, consumers of one group
                compete. ``mode=queue``: the topic's queue is its one implicit group
                (named in the queue tag ``mqkit-group``); a second group raises
                :class:`mqkit.Unsupported`
FIFO            a topic name ending in ``.fifo`` (or every topic, with ``fifo=true``)
                makes a FIFO topic and FIFO queues (native names end in ``.fifo``);
                the message key is the MessageGroupId (``mqkit`` without a key: keyless
                messages keep one order), the message id the MessageDeduplicationId
                (its SHA-256 when SQS refuses it). A FIFO topic declares ``ordering``
                and ``dedup`` native and ``delay`` unsupported:
                ``client.capabilities_for(topic)`` for a ``*.fifo`` name, and
                ``client.capabilities`` too with ``fifo=true``
ack             DeleteMessageBatch
nack            ChangeMessageVisibilityBatch to 0 s, or to the delay asked (rounded
                up to whole seconds, at most 12 h)
reject          DeleteMessageBatch (no dead letter)
delivery count  ApproximateReceiveCount
lease           the receive's VisibilityTimeout (``lease`` rounded up to seconds);
                ``extend_lease`` is ChangeMessageVisibilityBatch; ``run`` extends the
                lease of messages whose handler still runs
dead letter     the portable layer publishes a copy with the failure reason to
                topic ``<topic>-dlq`` (group ``dead-letters``), then acks. With
                ``max_receive_count=N`` every group queue also gets a native redrive
                policy into that group's queue (``<topic>-dlq-dead-letters``): a
                message received N times without being settled (crashing consumers)
                moves there without a reason header. Keep N above the retry policy's
                ``max_attempts``. Declared emulated either way: the redrive is a
                safety net for unsettled messages, not the dead-letter path
delay (send)    ``mode=queue``: native DelaySeconds (rounded up, at most 900 s; more
                raises :class:`mqkit.InvalidMessage`). ``mode=sns``: SNS has no
                per-message delay, so a delayed message is sent with DelaySeconds
                straight to every SQS queue subscribed to the topic (emulated). FIFO
                queues take no per-message delay (:class:`mqkit.Unsupported`)
priority        emulated on standard topics: priority p in 1..9 goes to band p, an SNS
                topic ``<topic>-mqkit-p<p>`` with a band queue per group subscribed
                (``mode=sns``) or a queue ``<topic>-mqkit-p<p>`` (``mode=queue``), made
                on the first send at p; a consumer short-polls its bands highest first,
                then its plain queue. FIFO topics declare and take no priority (see
                ``docs/backends/sqs.md``, "Priority")
close           the unsettled messages of a closing consumer are made visible again
==============  =================================================================

Delivery is at-least-once (standard queues may deliver twice). ``send`` returns once
SNS or SQS accepted every message (PublishBatch / SendMessageBatch, up to 10 entries
per request); per-entry failures raise :class:`mqkit.SendBatchError` naming them.
Receives ask for up to 10 messages with long polling. With batches on every side a
message costs 0.3 requests (send, receive, delete); one call per action costs 3.
A message sent in sns mode to a topic with no group is dropped by SNS.

Message format (readable by plain peers): a body that is valid UTF-8 text SQS accepts
goes as is; any other body goes as base64, and an empty body as ``-``, flagged in the
``mqkit`` attribute. Each header is a ``String`` message attribute of the same name.
mqkit's own fields travel in one ``String`` attribute ``mqkit`` holding a JSON object
(``id``, ``key``, ``content-type``, ``correlation-id``, ``reply-to``, ``body``:
``base64``/``empty``, ``headers``: headers SQS cannot carry as attributes, such as empty
values, and those past the 9 attributes beside ``mqkit``, the user's first). So any
number of headers fits (``max_headers`` unbounded: SQS allows 10 attributes, a plain
peer sees the first 9 of the user's headers as attributes), and ``max_message_size``
is 256 KiB less 512 bytes kept for the ``mqkit`` attribute; a message whose body
(after base64) and attributes exceed 256 KiB raises :class:`mqkit.MessageTooLarge`
before anything is sent. A message from a plain peer (no ``mqkit`` attribute) gets
the SQS MessageId as its id, and every attribute as a header (Binary ones in base64).

URL
---
``sqs://[access_key_id:secret_access_key@][host[:port]][/path][?params]`` and
``sns+sqs://...`` (the same, ``mode=sns`` fixed). Without a host the client talks to
AWS's own endpoints; a host is an endpoint override (moto, LocalStack, a VPC endpoint),
``https`` unless ``tls=false``. Without keys in the URL, boto3's usual chain applies
(environment, shared files, profile, instance or task role). Parameters (also keyword
arguments of ``mqkit.connect``):

``mode`` (``sns`` | ``queue``), ``region`` (else boto3's configured region),
``profile``, ``session_token`` (secret), ``tls`` (true), ``verify`` (true: check the
endpoint's certificate), ``ca_file``, ``prefix`` ("": before every topic and queue
name), ``queue_format`` (``{topic}-{group}``), ``fifo`` (false: every topic FIFO),
``wait_time`` (20: longest long poll, seconds), ``max_receive_count`` (0: no redrive
policy), ``retention`` (345600 s: the queues' MessageRetentionPeriod),
``persistent`` (default: true on AWS's endpoints, false with an endpoint override,
which may be an emulator that forgets), ``recreate`` (default: true with an endpoint
override unless ``persistent=true``: a topic or group this client created or used
that vanished without this client deleting it - an emulator restarted - is created
again and the call raises :class:`mqkit.Unavailable`), ``account_id`` (else STS
GetCallerIdentity, once, to build topic ARNs), ``max_connections`` (64: the HTTP pool
of the one SQS and one SNS client). Portable parameters (``connect_timeout``,
``prefetch``, ``lease``...) are mqkit's own.

Names take ASCII letters, digits, ``-`` and ``_``; other characters of mqkit names
(``.``, ``:``) become ``_``, and queue names over 80 characters are cut and end in a
hash. The dead-letter topic of ``orders`` is ``orders-dlq``.

Native objects through ``as_()``: :class:`AwsClients` (session, SQS client, SNS
client), ``boto3.session.Session`` and ``botocore.client.BaseClient`` (the SQS client)
on the client; the topic and subscription drivers give their SNS or SQS client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqkit.driver import AdapterPlugin, ConnectParams

if TYPE_CHECKING:
    from mqkit.driver import Driver

    from ._driver import AwsClients

__all__ = ["AwsClients", "plugin"]


def __getattr__(name: str) -> object:
    if name == "AwsClients":
        from ._driver import AwsClients

        return AwsClients
    raise AttributeError(name)


def _connect(params: ConnectParams) -> Driver:
    from ._driver import connect

    return connect(params)


plugin = AdapterPlugin(name="sqs", schemes=("sqs", "sns+sqs"), extra="sqs",
                       connect=_connect)
