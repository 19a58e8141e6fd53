"""Process-level helpers shared by ``mqkit run`` and its worker supervisor (light: the
standard library only, so the CLI can import it at start-up)."""

from __future__ import annotations

import os
import sys

__all__ = ["hard_exit"]


def hard_exit(status: int) -> None:
    """Flush stdout and stderr (ignoring a closed or broken stream), then end the process
    with ``status`` at once: no ``finally`` blocks, no atexit handlers, no thread joins.
    For a second signal and a drain past its deadline, when waiting is what must not
    happen."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
