"""The ``mqkit`` command line: send, consume, admin, capabilities, doctor, demo.

Every command takes an optional broker URL first (the first argument containing
``://``; else ``$MQKIT_URL``; else ``memory://``); URLs are always printed redacted.
Exit status: 0 success, 1 an mqkit (runtime) error, 2 bad usage, 130 interrupted. Every
error is one line on stderr, never a traceback: ``error: <class>: <message>`` for mqkit
errors, ``mqkit <command>: error: <message>`` for usage. ``--traceback`` (before the
command) shows the traceback of an unexpected error instead.

Each invocation is one process: on ``memory://`` each starts with an empty broker.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    from ._commands import run

    return run(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
