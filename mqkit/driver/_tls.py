"""TLS for adapters: the URL parameters they share and one ``ssl.SSLContext`` builder.

An adapter's options dataclass inherits :class:`TLSOptions` (``@dataclass(frozen=True,
slots=True) class MyOptions(TLSOptions): ...``), so that ``parse_options`` accepts and
converts ``tls``, ``ca_file``, ``cert_file``, ``key_file``, ``key_password`` and
``verify`` like the adapter's own fields; an adapter whose TLS is off unless asked
redeclares ``tls: bool = False``, and one whose client can take a host name of its own
declares ``server_hostname`` or ``check_hostname`` beside its other fields. The driver
then hands its client ``ssl_context(options)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._errors import ConfigurationError
from .._url import Secret

if TYPE_CHECKING:
    import ssl  # imported when a context is built: importing the SPI stays cheap

__all__ = ["TLSOptions", "certificate_refusal", "ssl_context"]


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """The TLS URL parameters (keyword arguments of ``connect``) adapters share.

    ``tls``: on or off; ``None`` lets the adapter decide from the URL scheme
    (:meth:`tls_enabled`). ``ca_file``: PEM bundle of the CAs that verify the server
    (``None``: the system's CAs). ``cert_file`` and ``key_file``: the client certificate
    and its key for mutual TLS (``key_file`` may be left out when ``cert_file`` holds
    the key too). ``key_password``: the key's password, a :class:`~mqkit.Secret` shown
    nowhere. ``verify``: check the server's certificate (and host name); on by default.
    """

    tls: bool | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: Secret | None = None
    verify: bool = True

    def tls_enabled(self, *, default: bool) -> bool:
        """``tls`` when given, else ``default`` (for example "the scheme is amqps")."""
        return self.tls if self.tls is not None else default


def ssl_context(options: TLSOptions, *, check_hostname: bool = True) -> ssl.SSLContext:
    """A client ``SSLContext`` for ``options``: TLS 1.2 at least, the server verified.

    The server's certificate is verified against ``ca_file`` (or the system's CAs) and
    its host name checked, unless ``verify`` is false (then neither); ``check_hostname=
    False`` keeps the certificate check and skips the host name. ``cert_file``/``key_file``
    load the client certificate, decrypted with ``key_password``, which is handed to
    :mod:`ssl` as a callable so that its clear text is held by no frame and appears in no
    message. A file that cannot be read or loaded raises :class:`ConfigurationError`
    naming the parameter, with the native error as ``__cause__``.
    """
    import ssl

    try:
        context = ssl.create_default_context(cafile=options.ca_file or None)
    except OSError as exc:  # ssl.SSLError included: not PEM, no certificate in it
        raise ConfigurationError(
            f"option 'ca_file': cannot load the CA bundle {options.ca_file!r}: "
            f"{_reason(exc)}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if options.verify:
        context.check_hostname = check_hostname
    else:
        context.check_hostname = False  # first: CERT_NONE is refused while it is on
        context.verify_mode = ssl.CERT_NONE
    if options.cert_file:
        for name, path in (("cert_file", options.cert_file), ("key_file", options.key_file)):
            if path:
                _check_readable(name, path)
        password = options.key_password.reveal if options.key_password else None
        unusable = False
        try:
            context.load_cert_chain(options.cert_file, options.key_file or None,
                                    password=password)
        except OSError as exc:  # ssl.SSLError: not PEM, another key, a wrong password
            raise ConfigurationError(
                "options 'cert_file', 'key_file', 'key_password': cannot load the client "
                f"certificate {options.cert_file!r} and its key ({_reason(exc)}): is the "
                "key the certificate's, and key_password the key's password?") from exc
        except ValueError:  # its UnicodeEncodeError holds the password: raised after
            unusable = True
        if unusable:
            raise ConfigurationError(
                "option 'key_password': unusable (longer than 1024 bytes, or not "
                "encodable as UTF-8)")
    return context


def _check_readable(name: str, path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigurationError(
            f"option {name!r}: cannot read {path!r}: {_reason(exc)}") from exc


def _reason(exc: OSError) -> str:
    """What went wrong, from ``exc`` (an OS or OpenSSL error: it never holds a password)."""
    return exc.strerror or str(exc) or type(exc).__name__


def certificate_refusal(exc: BaseException, url: object) -> ConfigurationError | None:
    """A :class:`ConfigurationError` when ``exc`` comes from the server's certificate
    failing verification (an ``ssl.SSLCertVerificationError`` among its causes and
    contexts), else None.

    The core raises it instead of retrying until ``connect_timeout``: trying again does
    not change the certificate or the CAs it is checked against. ``url`` is rendered as
    given (pass a :class:`mqkit.URL`: its ``str`` shows no secret).
    """
    import ssl

    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        err = stack.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, ssl.SSLCertVerificationError):
            why = err.verify_message or err.reason or "certificate verify failed"
            return ConfigurationError(
                f"could not connect to {url}: the server's TLS certificate was refused "
                f"({why}); give the CA that signed it as ca_file, or check the host name in "
                "the URL (verify=false turns the check off, for tests only)")
        stack.extend(e for e in (err.__cause__, err.__context__) if e is not None)
    return None
