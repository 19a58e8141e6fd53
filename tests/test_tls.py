"""The SPI's TLS pieces: ``TLSOptions`` (the URL parameters four adapters inherit) and
``ssl_context`` (the one builder of their ``SSLContext``).

Certificates are throwaway ones made per session: a CA and a ``localhost`` certificate it
signs, whose key is encrypted with a password (the ``cryptography`` package when
installed, else the ``openssl`` command). Handshakes run in memory (``ssl.MemoryBIO``),
so every check of verification is a real one and no socket is opened.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import ssl
import traceback
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import mqkit
from mqkit.driver import ConfigurationError, Secret, TLSOptions, parse_options, ssl_context
from mqkit.driver._tls import certificate_refusal

from .pki import KEY_PASSWORD, Pki, make_pki
from .secret_logs import assert_hidden, secrets


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    made = make_pki(tmp_path_factory.mktemp("pki"))
    if made is None:
        pytest.skip("neither the cryptography package nor the openssl command")
    return made


def _server(pki: Pki, *, client_ca: Path | None = None) -> ssl.SSLContext:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki.cert, pki.key, password=KEY_PASSWORD)
    if client_ca is not None:  # mutual TLS: the client must show a certificate
        server.verify_mode = ssl.CERT_REQUIRED
        server.load_verify_locations(client_ca)
    return server


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, hostname: str) -> None:
    """A whole TLS handshake in memory; raises what the client or the server raises."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    ends = [client.wrap_bio(c_in, c_out, server_hostname=hostname),
            server.wrap_bio(s_in, s_out, server_side=True)]
    done = [False, False]
    for _ in range(20):
        for i, end in enumerate(ends):
            if not done[i]:
                try:
                    end.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done):
            return
    raise AssertionError("the in-memory handshake did not finish")


# -- defaults: verification on, TLS 1.2 at least ------------------------------------------


def test_verification_is_on_by_default_and_tls_1_2_is_the_floor() -> None:
    assert TLSOptions() == TLSOptions(tls=None, ca_file=None, cert_file=None, key_file=None,
                                      key_password=None, verify=True)
    context = ssl_context(TLSOptions())
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_verify_false_turns_off_both_checks_and_check_hostname_only_the_name() -> None:
    off = ssl_context(TLSOptions(verify=False))
    assert (off.verify_mode, off.check_hostname) == (ssl.CERT_NONE, False)
    assert ssl_context(TLSOptions(verify=False), check_hostname=True).check_hostname is False
    named_off = ssl_context(TLSOptions(), check_hostname=False)
    assert (named_off.verify_mode, named_off.check_hostname) == (ssl.CERT_REQUIRED, False)


def test_tls_enabled_takes_the_default_only_when_unset() -> None:
    assert TLSOptions().tls_enabled(default=True) is True
    assert TLSOptions().tls_enabled(default=False) is False
    assert TLSOptions(tls=False).tls_enabled(default=True) is False
    assert TLSOptions(tls=True).tls_enabled(default=False) is True


# -- the CA file, verified in real handshakes ------------------------------------------


def test_ca_file_is_loaded_and_verifies_the_server(pki: Pki) -> None:
    context = ssl_context(TLSOptions(ca_file=str(pki.ca)))
    subjects = [ca["subject"] for ca in context.get_ca_certs()]
    assert subjects == [((("commonName", "mqkit test CA"),),)]  # that file's CA, only it
    _handshake(context, _server(pki), "localhost")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"[Hh]ostname"):
        _handshake(context, _server(pki), "other.example")
    _handshake(ssl_context(TLSOptions(ca_file=str(pki.ca)), check_hostname=False),
               _server(pki), "other.example")


def test_without_the_ca_the_server_is_refused_unless_verify_is_off(pki: Pki) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(ssl_context(TLSOptions()), _server(pki), "localhost")
    _handshake(ssl_context(TLSOptions(verify=False)), _server(pki), "other.example")


def test_client_certificate_with_its_key_password(pki: Pki) -> None:
    mutual = TLSOptions(ca_file=str(pki.ca), cert_file=str(pki.cert), key_file=str(pki.key),
                        key_password=Secret(KEY_PASSWORD))
    _handshake(ssl_context(mutual), _server(pki, client_ca=pki.ca), "localhost")
    with pytest.raises(ssl.SSLError):  # no client certificate: the server refuses
        _handshake(ssl_context(TLSOptions(ca_file=str(pki.ca))),
                   _server(pki, client_ca=pki.ca), "localhost")


# -- a bad value is a ConfigurationError naming the parameter --------------------------


def test_a_missing_or_unreadable_file_names_its_parameter(pki: Pki, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    chain = {"cert_file", "key_file", "key_password"}
    cases = [
        (TLSOptions(ca_file=missing), {"ca_file"}, FileNotFoundError),
        (TLSOptions(ca_file=str(junk)), {"ca_file"}, ssl.SSLError),
        (TLSOptions(cert_file=missing, key_file=str(pki.key)), {"cert_file"},
         FileNotFoundError),
        (TLSOptions(cert_file=str(pki.cert), key_file=missing), {"key_file"},
         FileNotFoundError),
        (TLSOptions(cert_file=str(pki.cert), key_file=str(pki.other_key)), chain,
         ssl.SSLError),
        (TLSOptions(cert_file=str(pki.cert), key_file=str(pki.key),
                    key_password=Secret("ZQwron")), chain, ssl.SSLError),
    ]
    for options, named, cause in cases:
        with pytest.raises(ConfigurationError) as info:
            ssl_context(options)
        assert set(re.findall(r"'(\w+_(?:file|password))'", str(info.value))) == named
        assert isinstance(info.value.__cause__, cause), (options, info.value.__cause__)


@pytest.mark.parametrize("password", ["ZQlong1" * 200, "ZQsur1\ud800"])
def test_an_unusable_password_is_named_and_carried_nowhere(pki: Pki, password: str) -> None:
    options = TLSOptions(cert_file=str(pki.cert), key_file=str(pki.key),
                         key_password=Secret(password))
    with pytest.raises(ConfigurationError, match="'key_password'") as info:
        ssl_context(options)
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert_hidden(["".join(traceback.format_exception(info.value))], password)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(secret=secrets())
def test_the_key_password_never_shows(pki: Pki, secret: str) -> None:
    options = parse_options(TLSOptions, {"cert_file": str(pki.cert), "key_file": str(pki.key),
                                         "key_password": secret, "tls": "true"})
    assert isinstance(options.key_password, Secret)
    assert_hidden([repr(options), str(options), repr(dataclasses.astuple(options))], secret)
    with pytest.raises(ConfigurationError) as info:  # it is not the key's password
        ssl_context(options)
    shown = "".join(traceback.format_exception(info.value))
    assert_hidden([shown, str(info.value), repr(info.value), repr(info.value.__cause__)],
                  secret)


# -- adapters declare the fields by inheriting them -----------------------------------------

TLS_NAMES = ("tls", "ca_file", "cert_file", "key_file", "key_password", "verify",
             "server_hostname", "check_hostname", "tls_handshake_first")
SHARED = {"ca_file": None, "cert_file": None, "key_file": None, "key_password": None,
          "verify": True}
# Each adapter's TLS parameters and their defaults, as documented in docs/backends/.
ADAPTERS = {
    "mqkit_kafka._options.KafkaOptions": {"tls": False, **SHARED},
    "mqkit_nats._options.NatsOptions": {"tls": False, **SHARED, "server_hostname": None,
                                        "tls_handshake_first": False},
    "mqkit_rabbitmq._options.RabbitOptions": {"tls": None, **SHARED,
                                              "server_hostname": None},
    "mqkit_redis._options.RedisOptions": {"tls": None, **SHARED, "check_hostname": True},
}


@pytest.mark.parametrize("path", sorted(ADAPTERS))
def test_each_adapter_keeps_its_tls_parameters_and_defaults(path: str) -> None:
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, TLSOptions)
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.name in TLS_NAMES}
    assert defaults == ADAPTERS[path]
    parsed = parse_options(cls, {"tls": "true", "verify": "false", "key_password": "ZQpw12"})
    assert (parsed.tls, parsed.verify, parsed.key_password) == (True, False, Secret("ZQpw12"))
    if ADAPTERS[path]["tls"] is False:  # off unless asked: "none" is no value for it
        with pytest.raises(ConfigurationError, match="'tls'"):
            parse_options(cls, {"tls": "none"})


def _raised_from(inner: BaseException, outer: BaseException, *, implicit: bool) -> BaseException:
    """``outer`` raised while handling ``inner`` (``implicit``) or ``from`` it."""
    try:
        try:
            raise inner
        except BaseException as exc:
            if implicit:
                raise outer  # noqa: B904 - the implicit context is what is tested
            raise outer from exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize("implicit", [True, False])
def test_a_refused_server_certificate_becomes_a_configuration_error(implicit: bool) -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "unable to get local issuer certificate"
    client_error = _raised_from(verify, ConnectionError("Error 1 connecting"), implicit=implicit)
    mapped = _raised_from(client_error, mqkit.Unavailable("redis: connect"), implicit=False)
    url = mqkit.URL.parse("rediss://alice:ZQpw-secret@cache.example:6380/0")
    refused = certificate_refusal(mapped, url)
    assert isinstance(refused, ConfigurationError)
    assert "unable to get local issuer certificate" in str(refused)
    assert "ca_file" in str(refused) and "ZQpw-secret" not in str(refused)


def test_other_connection_errors_are_left_to_the_retries() -> None:
    assert certificate_refusal(mqkit.Unavailable("refused"), "x://h") is None
    other_tls = _raised_from(ssl.SSLError(1, "wrong version number"),
                             mqkit.Unavailable("handshake"), implicit=False)
    assert certificate_refusal(other_tls, "x://h") is None
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a  # a cycle ends the walk
    assert certificate_refusal(a, "x://h") is None
