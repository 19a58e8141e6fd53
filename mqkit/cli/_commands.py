"""The subcommands of ``mqkit``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._codecs import named_codec
from .._errors import ConfigurationError
from .._sync._client import Client, connect
from ._demo import run_demo
from ._doctor import run_doctor

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    """Register every subcommand on the argparse subparsers object ``sub``."""
    p = sub.add_parser("send", help="send messages to a topic")
    _url_arg(p)
    p.add_argument("topic")
    p.add_argument("body", nargs="?", help="message body (default: read stdin)")
    p.add_argument("--key")
    p.add_argument("--header", "-H", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--codec", default="raw", choices=["raw", "text", "json"],
                   help="how BODY is encoded (json: BODY is parsed as JSON first)")
    p.add_argument("--lines", action="store_true", help="send each stdin line as one message")
    p.add_argument("--create", action="store_true", help="create the topic if missing")
    p.set_defaults(run=_send)

    p = sub.add_parser("consume", help="receive, print and ack messages")
    _url_arg(p)
    p.add_argument("topic")
    p.add_argument("--group", "-g", required=True)
    p.add_argument("--max", type=int, default=10, help="stop after this many (0: no limit)")
    p.add_argument("--timeout", type=float, default=5.0, help="stop after this idle time")
    p.add_argument("--no-ack", action="store_true", help="nack instead of ack (peek)")
    p.add_argument("--earliest", action="store_true", help="a new group starts at the earliest")
    p.set_defaults(run=_consume)

    p = sub.add_parser("topics", help="list topics (and groups with --groups)")
    _url_arg(p)
    p.add_argument("--groups", action="store_true")
    p.set_defaults(run=_topics)

    p = sub.add_parser("capabilities", help="what the backend does natively, emulated, or not")
    _url_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_capabilities)

    p = sub.add_parser("doctor", help="connect, round-trip a message, report latency")
    _url_arg(p)
    p.set_defaults(run=lambda a: run_doctor(a.url))

    p = sub.add_parser("demo", help="the order pipeline: groups, retries, dead letters, "
                                    "request/reply")
    p.add_argument("url", nargs="?", default=None,
                   help="broker URL (default: $MQKIT_URL, else memory://)")
    p.set_defaults(run=lambda a: run_demo(a.url))


def _url_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="broker URL, e.g. memory:// or kafka://localhost:9092")


def _parse_headers(items: list[str]) -> dict[str, str]:
    headers = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ConfigurationError(f"header {item!r} is not NAME=VALUE")
        headers[name] = value
    return headers


def _send(args: argparse.Namespace) -> int:
    codec = named_codec(args.codec)
    headers = _parse_headers(args.header)
    if args.body is not None:
        raw_items = [args.body]
    elif args.lines:
        raw_items = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    else:
        raw_items = [sys.stdin.read()]
    with connect(args.url, auto_create=args.create) as client:
        with client.producer(args.topic, codec=codec) as producer:
            for raw in raw_items:
                value: Any = raw.encode() if args.codec == "raw" else raw
                if args.codec == "json":
                    value = json.loads(raw)
                msg_id = producer.send(value, key=args.key, headers=headers or None)
                print(msg_id)
    return 0


def _consume(args: argparse.Namespace) -> int:
    with connect(args.url) as client:
        consumer = client.consumer(args.topic, args.group,
                                   start="earliest" if args.earliest else None)
        with consumer:
            seen = 0
            while args.max == 0 or seen < args.max:
                want = 10 if args.max == 0 else min(10, args.max - seen)
                batch = consumer.receive(want, timeout=args.timeout)
                if not batch:
                    break
                for msg in batch:
                    print(json.dumps({
                        "id": msg.id, "key": msg.key, "headers": dict(msg.headers),
                        "delivery_count": msg.delivery_count, "timestamp": msg.timestamp,
                        "body": msg.body.decode("utf-8", errors="backslashreplace"),
                    }, ensure_ascii=False))
                if args.no_ack:
                    consumer.nack(batch)
                else:
                    consumer.ack(batch)
                seen += len(batch)
    return 0


def _topics(args: argparse.Namespace) -> int:
    with connect(args.url) as client:
        for topic in client.admin.list_topics():
            if not args.groups:
                print(topic)
                continue
            groups = client.admin.list_groups(topic)
            print(f"{topic}\t{', '.join(groups) or '-'}")
    return 0


def _capabilities(args: argparse.Namespace) -> int:
    with connect(args.url) as client:
        print(format_capabilities(client, as_json=args.json))
    return 0


def format_capabilities(client: Client, *, as_json: bool = False) -> str:
    """The client's capabilities as an aligned table, or JSON."""
    data = client.capabilities.as_dict()
    if as_json:
        return json.dumps(data, indent=2)
    width = max(len(k) for k in data)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in data.items())
