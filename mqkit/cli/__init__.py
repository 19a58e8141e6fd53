"""The ``mqkit`` command line: send, consume, topics, capabilities, doctor, demo.

Every command takes a broker URL (or ``$MQKIT_URL``, else ``memory://``); URLs are
always printed redacted. Exit status: 0 success, 1 an mqkit error (printed as
``error: <class>: <message>``), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._errors import MQError
from ._commands import add_commands

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="mqkit", description="One API over RabbitMQ, Kafka, SQS/SNS, Redis, NATS and memory.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except MQError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
