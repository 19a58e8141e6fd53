"""Keep secrets out of log records: mqkit's own and those of the client libraries it drives.

mqkit hands passwords, tokens and keys to pika, kafka-python, botocore, redis-py and
nats-py, and some of those log them at DEBUG (kafka-python logs its whole configuration,
botocore every request's headers and canonical request). Rather than trust each library,
mqkit installs one log-record factory (:func:`logging.setLogRecordFactory`, chained to the
factory in place) the first time a secret is registered. It rewrites a record as it is
made, before any filter or handler sees it:

- in every record of the process, each registered secret (see :func:`register`), also in
  the forms a library prints it in (``repr`` of a ``str`` or of its UTF-8 ``bytes``, JSON,
  percent-encoded), becomes ``***``;
- in records of the driven libraries' loggers (:data:`LIBRARY_LOGGERS`) and of mqkit's,
  also the value after any credential-looking key (``'sasl_plain_password': '...'``,
  ``x-amz-security-token:...``, ``password=...``, ``Authorization: ...``) and the password
  of any ``scheme://user:password@`` URL, so that credentials a library found on its own
  (an AWS profile, an environment variable) are hidden too.

The message (``msg`` with ``args``), the formatted exception (``exc_text``) and
``stack_info`` are redacted; when something was replaced the record carries the redacted
text in ``msg`` with empty ``args``. Secrets shorter than :data:`MIN_LENGTH` characters
are hidden only by the key patterns, since replacing them everywhere would mangle
ordinary words. A factory installed later that does not chain to the one in place ends
the redaction; :func:`install` (called on every registration) puts it back in front.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from ._url import Secret

__all__ = ["LIBRARY_LOGGERS", "MIN_LENGTH", "REDACTED", "install", "redact", "register"]

REDACTED = "***"
MIN_LENGTH = 4
LIBRARY_LOGGERS = ("mqkit", "pika", "kafka", "botocore", "boto3", "s3transfer", "urllib3",
                   "redis", "nats")
"""Top-level logger names whose records (and their children's) also get the key patterns."""
_LIBRARY_ROOTS = frozenset(LIBRARY_LOGGERS)

_KEY_PARTS = ("password", "passwd", "secret", "token", "credential", "nkey", "seed",
              "passphrase", "signature", "authorization", "private_key")
_SECRET_KEY = re.compile("|".join(_KEY_PARTS))  # searched in lowered text: much faster
# Any ``key: value`` / ``key=value`` / ``'key': 'value'``; the key is checked against
# _SECRET_KEY in _hide_value. Possessive quantifiers keep the scan linear.
_KEY_VALUE = re.compile(
    r"(?<![\w.-])(?P<key>[\w.-]++['\"]?)"
    r"(?P<sep>[ \t]*+[:=][ \t]*+\n?[ \t]*+)"
    r"(?P<value>b?'(?:[^'\\\n]|\\.)*+'|b?\"(?:[^\"\\\n]|\\.)*+\"|[^\s,;&'\"()\[\]{}|]++)")
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][\w+.-]*+://[^\s/?#@:]*+:)[^\s/?#@]++(?=@)")

_lock = threading.Lock()
_forms: set[str] = set()
_value_pattern: re.Pattern[str] | None = None


def _forms_of(secret: str) -> set[str]:
    """The texts a library may print ``secret`` as."""
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1]}
    try:
        forms |= {repr(secret.encode())[2:-1], quote(secret, safe=""), quote(secret),
                  quote_plus(secret, safe="")}
    except UnicodeEncodeError:  # a lone surrogate: no library sends it as UTF-8 either
        pass
    return {f for f in forms if len(f) >= MIN_LENGTH}


def register(secrets: Iterable[object]) -> None:
    """Hide each ``str`` (or :class:`mqkit.Secret`) of ``secrets`` from every log record.

    Idempotent and thread-safe; other objects and short strings are ignored. Secrets stay
    registered for the life of the process (a record may be logged after a close).
    """
    fresh: set[str] = set()
    for item in secrets:
        value = item.reveal() if isinstance(item, Secret) else item
        if isinstance(value, str):
            fresh |= _forms_of(value)
    global _value_pattern
    with _lock:
        if not fresh <= _forms:
            _forms.update(fresh)
            ordered = sorted(_forms, key=len, reverse=True)
            _value_pattern = re.compile("|".join(re.escape(f) for f in ordered))
    install()


def redact(text: str, *, library: bool = True) -> str:
    """``text`` with registered secrets (and, for ``library``, key patterns) hidden."""
    pattern = _value_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if library:
        if _SECRET_KEY.search(text.lower()):
            text = _KEY_VALUE.sub(_hide_value, text)
        if "://" in text:
            text = _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED, text)
    return text


def _hide_value(match: re.Match[str]) -> str:
    if not _SECRET_KEY.search(match["key"].lower()):
        return match[0]
    return f"{match['key']}{match['sep']}{REDACTED}"


def _is_library(name: str) -> bool:
    return name.partition(".")[0] in _LIBRARY_ROOTS


def _redact_record(record: logging.LogRecord) -> None:
    library = _is_library(str(record.name))
    if not library and _value_pattern is None:
        return
    try:
        text = record.getMessage()
    except Exception:  # a bad format: logging reports msg and args, so redact them
        text = f"{record.msg} (arguments: {record.args!r})"
    hidden = redact(text, library=library)
    if hidden != text:
        record.msg, record.args = hidden, ()
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        shown = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        hidden = redact(shown, library=library)
        if hidden != shown:
            record.exc_text = hidden
    if record.stack_info:
        record.stack_info = redact(record.stack_info, library=library)


_Factory = Callable[..., logging.LogRecord]


def _chain(previous: _Factory) -> _Factory:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    factory.mqkit_redacting = True  # type: ignore[attr-defined]
    return factory


def install() -> None:
    """Put the redacting record factory in front of the current one (idempotent)."""
    with _lock:
        current = logging.getLogRecordFactory()
        if not getattr(current, "mqkit_redacting", False):
            logging.setLogRecordFactory(_chain(current))
