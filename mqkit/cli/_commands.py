"""The subcommands of ``mqkit``: parsing, dispatch, and one-line errors.

Importing this module is cheap (argparse and mqkit's error classes): a command imports
the blocking face, and with it the adapter registry, only when it runs, so ``mqkit
--help`` and usage errors never pay for it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from .. import __version__
from .._errors import MQError, NotFound

if TYPE_CHECKING:
    from .._sync._client import Client
    from .._sync._consumer import Consumer
    from .._sync._received import ReceivedMessage

__all__ = ["UsageError", "format_capabilities", "run"]

PEEK_HOLD = 1000  # what a group peek with --max 0 holds at most before giving all back
URL_HELP = "broker URL (default: $MQKIT_URL, else memory://)"
MEMORY_HINT = ("; note: memory:// lives inside one process, so each mqkit command starts "
               "with an empty broker: use a real broker URL (or $MQKIT_URL) to keep topics "
               "between commands")


class UsageError(Exception):
    """Bad command-line usage: printed as one line, exit status 2.

    ``prog`` (``mqkit send``) defaults to the command being run.
    """

    def __init__(self, message: str, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)


@dataclass(frozen=True)
class _Command:
    help: str
    positionals: tuple[str, ...]  # after the optional URL; a trailing "?" marks optional
    options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# -- entry point ------------------------------------------------------------------------

def run(argv: list[str]) -> int:
    """Parse ``argv`` (without the program name), run the command, return the status."""
    top = _top_parser()
    args = argparse.Namespace(url=None, scheme=None, traceback=False, command=None)
    urls = [a for a in [*argv, os.environ.get("MQKIT_URL", "")] if "://" in a]
    try:
        top.parse_args(argv, namespace=args)
        if args.command is None:
            top.error("missing COMMAND")
        command = _COMMANDS.get(args.command)
        if command is None:
            top.error(f"unknown command {args.command!r}; commands: {', '.join(_COMMANDS)}")
        parser = _command_parser(args.command, command)
        parser.parse_intermixed_args(args.rest, namespace=args)
        _assign_positionals(parser, command, args)
        return command.run(args)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except UsageError as exc:
        prog = exc.prog or f"mqkit {args.command}"
        _fail(f"{prog}: error: {exc} (see {prog} --help)", urls)
        return 2
    except MQError as exc:
        hint = MEMORY_HINT if isinstance(exc, NotFound) and args.scheme == "memory" else ""
        _fail(f"error: {type(exc).__name__}: {exc}{hint}", urls)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (``mqkit consume ... | head``)
        _silence_stdout()
        return 1
    except Exception as exc:
        if args.traceback:
            raise
        _fail(f"error: unexpected {type(exc).__name__}: {exc} (mqkit --traceback "
              f"{args.command} ... shows where)", urls)
        return 1


def _fail(text: str, urls: list[str]) -> None:
    """Print ``text`` as one line on stderr, with any secret of ``urls`` blanked out."""
    text = " ".join(text.splitlines())
    for url in urls:
        text = scrub(text, url)
    print(text, file=sys.stderr)


def scrub(text: str, url: str) -> str:
    """``text`` with the password and secret query values of ``url`` replaced by ``***``.

    A second line of defence behind mqkit's redacted URLs: it also catches the pieces of
    a password with unencoded reserved characters (``user:ab/cd@host``) that a parser
    split apart.
    """
    if "://" not in url:
        return text
    rest = url.split("://", 1)[1]
    secrets: set[str] = set()
    userinfo, at, _ = rest.rpartition("@")
    if at and ":" in userinfo:
        password = userinfo.split(":", 1)[1]
        secrets.add(password)
        for sep in "/?#@:":
            secrets.update(password.split(sep))
    _, q, query = rest.partition("?")
    if q:
        for pair in query.split("&"):
            name, eq, value = pair.partition("=")
            if eq and any(w in name.lower() for w in
                          ("pass", "token", "secret", "key", "seed", "cred", "sig")):
                secrets.add(value)
    for secret in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _silence_stdout() -> None:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# -- parsers ----------------------------------------------------------------------------

def _top_parser() -> _Parser:
    lines = [f"  {name:<14}{cmd.help}" for name, cmd in _COMMANDS.items()]
    parser = _Parser(
        prog="mqkit", usage="mqkit [--version] [--traceback] COMMAND [URL] [ARGS ...]",
        description="One API over RabbitMQ, Kafka, SQS/SNS, Redis, NATS and memory.",
        epilog="commands:\n" + "\n".join(lines) + "\n\nURL: " + URL_HELP + "; it is the "
               "first argument containing '://'. 'mqkit COMMAND --help' for a command. "
               "Exit status: 0 ok, 1 error, 2 bad usage.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mqkit {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the traceback of an unexpected error")
    parser.add_argument("command", nargs="?", metavar="COMMAND", help="one of the commands below")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _command_parser(name: str, command: _Command) -> _Parser:
    shown = " ".join(p[:-1].upper().join("[]") if p.endswith("?") else p.upper()
                     for p in command.positionals)
    parser = _Parser(prog=f"mqkit {name}", description=command.help,
                     usage=f"mqkit {name} [URL] {shown} [options]".replace("  ", " "),
                     epilog=f"URL: {URL_HELP}.")
    parser.add_argument("positional", nargs="*", help=argparse.SUPPRESS)
    command.options(parser)
    return parser


def _assign_positionals(parser: _Parser, command: _Command, args: argparse.Namespace) -> None:
    """Set ``args.url`` and one attribute per positional from what the user gave.

    The URL is optional and comes first: it is the first value containing ``://`` (no
    topic or group name can contain it).
    """
    given: list[str] = list(args.positional)
    args.url = given.pop(0) if given and "://" in given[0] else None
    names = [p.rstrip("?") for p in command.positionals]
    required = [p for p in command.positionals if not p.endswith("?")]
    if len(given) < len(required):
        parser.error("missing " + " and ".join(n.upper() for n in required[len(given):]))
    if len(given) > len(names):
        extra = given[len(names)]
        hint = " (the URL must come first)" if "://" in extra else ""
        parser.error(f"unexpected argument {extra!r}{hint}")
    for i, name in enumerate(names):
        setattr(args, name, given[i] if i < len(given) else None)


# -- helpers ----------------------------------------------------------------------------

@contextmanager
def _connect(args: argparse.Namespace, **options: Any) -> Iterator[Client]:
    """A blocking client for ``args.url``; remembers its scheme for error hints."""
    from .._sync._client import connect

    with connect(args.url, **options) as client:
        args.scheme = client.url.scheme
        yield client


def _parse_pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise UsageError(f"{what} {item!r} is not NAME=VALUE")
        pairs[name] = value
    return pairs


def _check_count(flag: str, value: int) -> int:
    if value < 0:
        raise UsageError(f"{flag} must be 0 (no limit) or more, not {value}")
    return value


def _check_seconds(flag: str, value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{flag} must be a finite number of seconds, 0 or more, not {value}")
    return value


# -- send -------------------------------------------------------------------------------

def _send_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key")
    p.add_argument("--header", "-H", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--codec", default="raw", choices=["raw", "text", "json"],
                   help="how BODY is encoded (json: BODY is parsed as JSON first)")
    p.add_argument("--lines", action="store_true", help="send each stdin line as one message")
    p.add_argument("--create", action="store_true", help="create the topic if missing")


def _send(args: argparse.Namespace) -> int:
    from .._codecs import named_codec

    codec = named_codec(args.codec)
    headers = _parse_pairs(args.header, "header")
    if args.body is not None:
        raw_items = [args.body]
    elif args.lines:
        raw_items = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    else:
        raw_items = [sys.stdin.read()]
    values = [_body_value(raw, args.codec) for raw in raw_items]
    with _connect(args, auto_create=args.create) as client:
        with client.producer(args.topic, codec=codec) as producer:
            for value in values:
                print(producer.send(value, key=args.key, headers=headers or None))
    return 0


def _body_value(raw: str, codec: str) -> Any:
    if codec == "raw":
        return raw.encode()
    if codec == "json":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise UsageError(f"BODY is not JSON (--codec json): {exc}"
                             ) from None
    return raw


# -- consume ----------------------------------------------------------------------------

def _consume_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group", "-g", help="the group to consume (required without --no-ack)")
    p.add_argument("--max", type=int, default=10, help="stop after this many (0: no limit)")
    p.add_argument("--timeout", type=float, default=5.0, help="stop after this idle time")
    p.add_argument("--no-ack", action="store_true",
                   help="peek, raising no delivery count. Without --group: the topic's "
                        "retained messages through a scratch group (deleted after; needs "
                        "replay). With --group: what waits for it, held until the end "
                        f"(--max, 0: up to {PEEK_HOLD}) and given back unstarted (needs "
                        "release)")
    p.add_argument("--earliest", action="store_true", help="a new group starts at the earliest")


def _consume(args: argparse.Namespace) -> int:
    limit = _check_count("--max", args.max)
    idle = _check_seconds("--timeout", args.timeout)
    if args.no_ack:
        if args.group is not None:
            return _peek_group(args, limit, idle)
        return _peek(args, limit, idle)
    if args.group is None:
        raise UsageError("--group is required (or --no-ack to peek)")
    with _connect(args) as client:
        consumer = client.consumer(args.topic, args.group,
                                   start="earliest" if args.earliest else None)
        with consumer:
            _print_until(consumer, limit, idle)
    return 0


def _peek(args: argparse.Namespace, limit: int, idle: float) -> int:
    from .._capabilities import Feature

    with _connect(args) as client:
        client.capabilities_for(args.topic).require(
            Feature.REPLAY, "consume --no-ack peeks through a scratch group started at the "
            "earliest retained message; without replay every receive is a delivery that "
            "counts, so there is no peek without consuming")
        scratch = f"mqkit-peek-{uuid.uuid4().hex[:12]}"
        client.admin.create_group(args.topic, scratch, start="earliest")
        try:
            with client.consumer(args.topic, scratch, start="earliest") as consumer:
                _print_until(consumer, limit, idle)
        finally:
            client.admin.delete_group(args.topic, scratch)
    return 0


def _peek_group(args: argparse.Namespace, limit: int, idle: float) -> int:
    """Print what waits for ``args.group`` and give it all back unstarted (released):
    the messages come back in order with the delivery count they had."""
    from .._capabilities import Feature

    hold = limit or PEEK_HOLD
    with _connect(args) as client:
        client.capabilities.require(
            Feature.RELEASE, "consume --group G --no-ack gives the messages back unstarted, "
            "and this backend counts that as a delivery; peek at the topic instead "
            "(--no-ack without --group)")
        if not client.admin.group_exists(args.topic, args.group):
            raise NotFound(f"group {args.group!r} does not exist on topic {args.topic!r}: "
                           "nothing to peek at")
        with client.consumer(args.topic, args.group, prefetch=hold) as consumer:
            held: list[ReceivedMessage] = []
            try:
                while len(held) < hold:
                    batch = consumer.receive(min(100, hold - len(held)), timeout=idle)
                    if not batch:
                        break
                    _print_messages(batch)
                    held += batch
            finally:
                consumer._release(held)
            consumer.flush_settlements()
    return 0


def _print_messages(batch: Sequence[ReceivedMessage]) -> None:
    for msg in batch:
        print(json.dumps({
            "id": msg.id, "key": msg.key, "headers": dict(msg.headers),
            "delivery_count": msg.delivery_count, "timestamp": msg.timestamp,
            "body": msg.body.decode("utf-8", errors="backslashreplace"),
        }, ensure_ascii=False))


def _print_until(consumer: Consumer, limit: int, idle: float) -> None:
    """Print and ack messages as JSON lines: ``limit`` of them (0: any number), until
    nothing arrives for ``idle`` seconds."""
    seen = 0
    while limit == 0 or seen < limit:
        batch = consumer.receive(10 if limit == 0 else min(10, limit - seen), timeout=idle)
        if not batch:
            break
        _print_messages(batch)
        consumer.ack(batch)
        seen += len(batch)
    consumer.flush_settlements()


# -- admin ------------------------------------------------------------------------------

def _no_options(p: argparse.ArgumentParser) -> None:
    del p


def _topics_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--groups", action="store_true", help="each topic's groups too")


def _topics(args: argparse.Namespace) -> int:
    with _connect(args) as client:
        for topic in client.admin.list_topics():
            if not args.groups:
                print(topic)
                continue
            groups = client.admin.list_groups(topic)
            print(f"{topic}\t{', '.join(groups) or '-'}")
    return 0


def _create_topic_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--option", "-o", action="append", default=[], metavar="NAME=VALUE",
                   help="a backend option (partitions=3, fifo=true, ...); VALUE is read as "
                        "JSON when it parses, else as text")


def _create_topic(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {}
    for name, text in _parse_pairs(args.option, "option").items():
        try:
            options[name] = json.loads(text)
        except json.JSONDecodeError:
            options[name] = text
    with _connect(args) as client:
        client.admin.create_topic(args.topic, **options)
    return 0


def _delete_topic(args: argparse.Namespace) -> int:
    with _connect(args) as client:
        client.admin.delete_topic(args.topic)
    return 0


def _create_group_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--earliest", action="store_true",
                   help="retain every message the topic still has (default: from now on)")


def _create_group(args: argparse.Namespace) -> int:
    with _connect(args) as client:
        client.admin.create_group(args.topic, args.group,
                                  start="earliest" if args.earliest else None)
    return 0


def _delete_group(args: argparse.Namespace) -> int:
    with _connect(args) as client:
        client.admin.delete_group(args.topic, args.group)
    return 0


def _purge(args: argparse.Namespace) -> int:
    with _connect(args) as client:
        client.admin.purge(args.topic, args.group)
    return 0


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def _stats(args: argparse.Namespace) -> int:
    with _connect(args) as client:
        stats = client.admin.stats(args.topic, args.group)
    if args.json:
        print(json.dumps({"topic": stats.topic, "group": stats.group, "depth": stats.depth,
                          "in_flight": stats.in_flight}))
    else:
        in_flight = "-" if stats.in_flight is None else stats.in_flight
        print(f"depth      {stats.depth}\nin_flight  {in_flight}")
    return 0


def _capabilities_options(p: argparse.ArgumentParser) -> None:
    _json_option(p)
    p.add_argument("--topic", default=None,
                   help="what the backend does on this topic (client.capabilities_for): "
                        "e.g. an SQS *.fifo topic orders and deduplicates")


def _capabilities(args: argparse.Namespace) -> int:
    with _connect(args) as client:
        print(format_capabilities(client, as_json=args.json, topic=args.topic))
    return 0


def format_capabilities(client: Client, *, as_json: bool = False,
                        topic: str | None = None) -> str:
    """The client's capabilities (``client.capabilities_for(topic)`` with a topic) as an
    aligned table, or JSON."""
    caps = client.capabilities if topic is None else client.capabilities_for(topic)
    data = caps.as_dict()
    if as_json:
        return json.dumps(data, indent=2)
    width = max(len(k) for k in data)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in data.items())


def _doctor(args: argparse.Namespace) -> int:
    from ._doctor import run_doctor

    return run_doctor(args.url)


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(args.url)


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", dest="url_option", metavar="URL",
                   help="the broker URL, replacing the app's own (as does a URL before APP)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="run N worker processes (each its own connection), supervised: "
                        "one that dies is restarted (default: run in this process)")
    p.add_argument("--graceful-timeout", type=float, metavar="SECONDS",
                   help="on SIGTERM/SIGINT, how long handlers in flight may finish "
                        "(default: the app's graceful_timeout, 30)")
    p.add_argument("--health-port", type=int, metavar="PORT",
                   help="serve GET /healthz (alive) and /readyz (every handler running) "
                        "over HTTP on this port (0: any free port, logged)")
    p.add_argument("--metrics", action="store_true",
                   help="also serve GET /metrics (Prometheus text format) on the health "
                        "port: the app's messaging metrics, labelled per worker with "
                        "--workers (needs --health-port and mqkit-sdk[otel])")
    p.add_argument("--health-host", default="0.0.0.0", metavar="HOST",
                   help="the address the health server binds (default 0.0.0.0)")
    p.add_argument("--max-restarts", type=int, default=5, metavar="N",
                   help="with --workers: give up (exit 1) when one worker needs more than "
                        "N restarts within 60 s (default 5)")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"])
    p.add_argument("--worker-of", type=int, help=argparse.SUPPRESS)
    p.add_argument("--status-fd", type=int, help=argparse.SUPPRESS)
    p.add_argument("--metrics-file", help=argparse.SUPPRESS)
    p.epilog = ("APP: MODULE:ATTR, an mqkit.service.App or a function returning one "
                "(./MODULE.py is found). First SIGTERM/SIGINT: stop receiving, let "
                "handlers in flight finish, settle, close, exit 0; second: exit at once "
                "(130; the broker redelivers what was unsettled). Exit status 1: the app "
                "failed or the drain was cut off. " + (p.epilog or ""))


def _run(args: argparse.Namespace) -> int:
    from ._run import run_command

    return run_command(args)


_COMMANDS: dict[str, _Command] = {
    "send": _Command("send messages to a topic", ("topic", "body?"), _send_options, _send),
    "consume": _Command("receive, print and ack messages (--no-ack: peek)", ("topic",),
                        _consume_options, _consume),
    "topics": _Command("list topics (and groups with --groups)", (), _topics_options, _topics),
    "create-topic": _Command("create a topic (does nothing if it exists)", ("topic",),
                             _create_topic_options, _create_topic),
    "delete-topic": _Command("delete a topic and its groups (nothing if missing)", ("topic",),
                             _no_options, _delete_topic),
    "create-group": _Command("create a group on a topic (does nothing if it exists)",
                             ("topic", "group"), _create_group_options, _create_group),
    "delete-group": _Command("delete a group (nothing if missing)", ("topic", "group"),
                             _no_options, _delete_group),
    "purge": _Command("drop every message waiting for a group", ("topic", "group"),
                      _no_options, _purge),
    "stats": _Command("a group's depth (or lag) and in-flight count", ("topic", "group"),
                      _json_option, _stats),
    "capabilities": _Command("what the backend does natively, emulated, or not", (),
                             _capabilities_options, _capabilities),
    "doctor": _Command("connect, round-trip a message, report latency", (), _no_options,
                       _doctor),
    "demo": _Command("the order pipeline: groups, retries, dead letters, request/reply", (),
                     _no_options, _demo),
    "run": _Command("run a service App (MODULE:ATTR) until SIGTERM/SIGINT, then drain",
                    ("app",), _run_options, _run),
}
