"""Priority emulated with one stream per band: the layout, making bands, finding them.

Layout. A message with priority p in 1..9 is published to the band subject
``<topic>.mqkit-p<p>`` (``band_subject``), captured by a **band stream** of its own, named
as the stream of a topic of that subject would be (``<stream_prefix><topic>_mqkit-p<p>``)
and made with the plain stream's limits (storage, replicas, max_age, max_bytes, max_msgs,
duplicate window). Each group has, on each band stream, a durable pull consumer of the
same name and settings as its consumer on the plain stream. Priority 0 or none goes to
the plain subject ``<topic>``: a topic never sent a priority is exactly what it was, and
plain NATS clients keep reading and writing it.

Why a stream per band rather than band subjects in the topic's stream, each read by a
consumer filtered on it (nats-server 2.9 filters a consumer on one subject, so both need
a consumer per group and band):

* the topic's stream keeps its one subject ``[<topic>]``: a band appears without a
  stream update (no change to a stream others may manage, no permission to edit it) and
  ``create_topic``, ``list_topics`` and plain tools see the topic as before; band subjects
  in the stream would need nine explicit subjects (``<topic>.mqkit-p*`` is no valid
  wildcard, ``<topic>.>`` would overlap topic ``<topic>.dlq``'s stream);
* a band is made, found and deleted as one object (one stream name, no filter to parse),
  and its messages have sequences of their own, so a band consumer's state (pending,
  ack floor) is the band's alone;
* the cost is one stream per level used, each with the topic's limits (a limit applies
  per band, not to the topic as a whole).

Making a band and creating a group race; the rule that makes the race harmless: the
consumer of group G on a band starts where G started on the plain stream, whoever makes
it: at the band's first message when G reads the plain stream from its first
(DeliverPolicy ``all``), else at the first band message stored at or after the time G's
plain consumer was created (its ``created`` stamp: the server's clock, as the messages'
own stamps). That sequence is asked of the server (a short-lived ephemeral consumer with
DeliverPolicy ``by_start_time``, whose starting point is read and which is deleted) and
the group's consumer made with DeliverPolicy ``by_start_sequence``: nats-server 2.9
refuses any update of a consumer made ``by_start_time`` ("start time can not be
updated"), and a subscription must be able to set its lease (AckWait). Then:

* a producer sending at priority p first makes the band stream (if missing), then lists
  the topic's groups and gives each a consumer on the band (``ensure_band``), and only
  then publishes;
* ``create_group`` (and a subscription that creates its group) first creates the plain
  consumer, then lists the bands and gives the group a consumer on each
  (``ensure_group_bands``).

Whichever of the two lists second sees the other's object, so a group existing when a
band message is stored always gets a consumer on that band, and, whenever it is made
(even after the message), it starts no later than the group did: nothing sent at
priority p after a group was created is lost to it. Both may make the same consumer; the
second finds it made (same config) and leaves it. A consumer opening also checks that
its group has a consumer on every band it finds, which repairs a band made by a plain
client or a creator that died half way.

Discovery. A consumer lists the band streams of its topic with one
``$JS.API.STREAM.NAMES`` request filtered on subject ``<topic>.*`` (``band_streams``):
when it opens (awaited), then in the background every ``LOOK_EVERY`` seconds, never in a
receive's own path.
"""

from __future__ import annotations

import json

import nats.js.errors as je
from nats.js import JetStreamContext, api

from ._link import Link
from ._names import BAND_DESCRIPTION, BANDS, band_subject, stream_name

__all__ = ["LOOK_EVERY", "band_consumer_config", "band_streams", "delete_band_consumers",
           "delete_bands", "ensure_band", "ensure_band_consumer", "ensure_group_bands",
           "reads_from_first", "start_seq_since"]

# How often a consumer looks for bands that appeared or went (one API request each
# time, in the background): a band made while it runs is read within a second, at one
# small request per second per consumer instance.
LOOK_EVERY = 1.0


async def band_streams(link: Link, prefix: str, topic: str) -> dict[int, str]:
    """The band streams of ``topic`` that exist, by priority (highest first): one
    ``STREAM.NAMES`` request filtered on ``<topic>.*`` (pages read to the end)."""
    wanted = {stream_name(prefix, band_subject(topic, p)): p for p in BANDS}
    found: set[str] = set()
    offset = 0
    while True:
        request = json.dumps({"subject": f"{topic}.*", "offset": offset}).encode()
        reply = await link.nc.request(f"{link.api_prefix}.STREAM.NAMES", request,
                                      timeout=link.options.api_timeout)
        data = json.loads(reply.data)
        if "error" in data:
            je.APIError.from_error(data["error"])  # raises the matching class
        names = data.get("streams") or []
        found.update(names)
        offset += len(names)
        if not names or offset >= int(data.get("total", 0)):
            break
    return {wanted[n]: n for n in sorted(found & wanted.keys(), key=wanted.__getitem__,
                                         reverse=True)}


def reads_from_first(plain: api.ConsumerInfo) -> bool:
    """Whether the group reads the plain stream from its first message (start
    ``earliest``): then it gets every message of a band too."""
    return plain.config.deliver_policy == api.DeliverPolicy.ALL


def band_consumer_config(plain: api.ConsumerInfo, subject: str,
                         start_seq: int | None) -> api.ConsumerConfig:
    """Group ``plain.name``'s consumer on the band of ``subject``: the plain consumer's
    settings, filtered on the band's subject, starting where the group started: every
    band message when it reads the plain stream from its first (``start_seq`` unused),
    else at band sequence ``start_seq`` (the first stored since the plain consumer was
    created, ``start_seq_since``)."""
    config = plain.config
    if reads_from_first(plain):
        return config.evolve(filter_subject=subject)
    if start_seq is None:
        raise ValueError("a band consumer of a group not reading from the first message "
                         "needs its start sequence")
    return config.evolve(filter_subject=subject,
                         deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                         opt_start_seq=start_seq, opt_start_time=None)


# How long the server keeps the ephemeral consumer start_seq_since makes, should its
# delete not arrive (the client died in between): long enough for the two calls.
_PROBE_INACTIVE = 30.0


async def start_seq_since(js: JetStreamContext, band: str, subject: str,
                          since: api.ConsumerInfo) -> int:
    """The sequence of the first message of ``band`` stored at or after ``since`` was
    created (the next one to come if none): the starting point of an ephemeral consumer
    made ``by_start_time`` (two requests: make it, delete it)."""
    probe = await js.add_consumer(band, api.ConsumerConfig(
        ack_policy=api.AckPolicy.NONE, deliver_policy=api.DeliverPolicy.BY_START_TIME,
        opt_start_time=since.created, filter_subject=subject,
        inactive_threshold=_PROBE_INACTIVE))
    try:
        await js.delete_consumer(band, probe.name)
    except je.NotFoundError:
        pass
    delivered = probe.delivered.stream_seq if probe.delivered is not None else 0
    return delivered + 1


async def ensure_band_consumer(js: JetStreamContext, band: str, subject: str,
                               plain: api.ConsumerInfo) -> api.ConsumerInfo:
    """The consumer of group ``plain.name`` on band stream ``band``, made if missing."""
    try:
        info: api.ConsumerInfo = await js.consumer_info(band, plain.name)
        return info
    except je.NotFoundError:
        pass
    start = None if reads_from_first(plain) else await start_seq_since(js, band, subject,
                                                                         plain)
    try:
        info = await js.add_consumer(band, band_consumer_config(plain, subject, start))
        return info
    except je.APIError as exc:
        try:  # made meanwhile by another client (a producer, create_group, a consumer)
            info = await js.consumer_info(band, plain.name)
            return info
        except je.NotFoundError:
            raise exc from None


async def ensure_band(js: JetStreamContext, prefix: str, topic: str, priority: int) -> None:
    """Make ``topic``'s band stream for ``priority`` if missing, then give every group of
    the topic a consumer on it (``je.NotFoundError`` when the topic does not exist)."""
    plain, subject = stream_name(prefix, topic), band_subject(topic, priority)
    band = stream_name(prefix, subject)
    info = await js.stream_info(plain)
    try:
        await js.stream_info(band)
    except je.NotFoundError:
        config = info.config.evolve(name=band, subjects=[subject],
                                    description=BAND_DESCRIPTION + topic)
        try:
            await js.add_stream(config)
        except je.APIError as exc:
            try:  # made meanwhile by another producer
                await js.stream_info(band)
            except je.NotFoundError:
                raise exc from None
    groups = await js.consumers_info(plain)
    if not groups:
        return
    made = {c.name for c in await js.consumers_info(band)}
    for group in groups:
        if group.name not in made:
            await ensure_band_consumer(js, band, subject, group)


async def ensure_group_bands(link: Link, prefix: str, topic: str, durable: str) -> None:
    """After group ``durable`` was created on ``topic``'s stream: its consumer on every
    band that exists (none: one request)."""
    bands = await band_streams(link, prefix, topic)
    if not bands:
        return
    plain = await link.js.consumer_info(stream_name(prefix, topic), durable)
    for priority, band in bands.items():
        await ensure_band_consumer(link.js, band, band_subject(topic, priority), plain)


async def delete_bands(link: Link, prefix: str, topic: str) -> None:
    """Delete every band stream of ``topic`` (with the topic)."""
    for band in (await band_streams(link, prefix, topic)).values():
        try:
            await link.js.delete_stream(band)
        except je.NotFoundError:
            continue


async def delete_band_consumers(link: Link, prefix: str, topic: str, durable: str) -> None:
    """Delete group ``durable``'s consumer on every band of ``topic`` (with the group)."""
    for band in (await band_streams(link, prefix, topic)).values():
        try:
            await link.js.delete_consumer(band, durable)
        except je.NotFoundError:
            continue
