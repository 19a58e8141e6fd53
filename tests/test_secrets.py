"""Secrets never show: in URLs, params, options, clients, errors, CLI output and log records.

Passwords and tokens are generated with every reserved URL character, ``%``, spaces,
quotes and non-ASCII text (see ``tests/secret_logs.py``); a secret shows when any of its
marker chunks appears. URLs either parse to exactly the parts they were built from or
raise :class:`ConfigurationError` naming the problem, never another exception.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import os
import subprocess
import sys
import traceback
import uuid
from contextlib import redirect_stderr, redirect_stdout
from typing import get_type_hints
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mqkit
import mqkit.aio
from mqkit import URL, ConfigurationError, MQError, Secret, _redact
from mqkit._connect import resolve
from mqkit._url import is_secret_name, parse_options
from mqkit.cli import main as cli_main
from mqkit.driver import ConnectParams

from .secret_logs import assert_hidden, debug_logs, secrets, shown_chunks

SCHEMES = ("amqp", "amqps", "kafka", "nats", "redis", "rediss", "sqs", "memory")
SECRET_NAMES = ("token", "password", "session_token", "nkey_seed", "key_password",
                "sasl_password")
PLAIN_NAMES = ("heartbeat", "region", "tls", "client_id", "db")

hostnames = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z0-9]{1,5}){0,2}", fullmatch=True)
hosts = st.tuples(st.one_of(hostnames, st.sampled_from(["::1", "fe80::1", "10.0.0.1"])),
                  st.one_of(st.none(), st.integers(1, 65535)))
plain_text = st.text(st.characters(codec="utf-8", exclude_characters="Z"), max_size=12)
many = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
some = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def renderings(url: URL) -> list[str]:
    """Every way a URL object is commonly shown."""
    return [str(url), repr(url), url.render(), repr(dataclasses.asdict(url)),
            repr(url.query), str(url.query), f"{url}", repr(url.password)]


def _host_text(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


# -- URL parsing: the right parts, or a ConfigurationError, never a secret ---------------


@many
@given(scheme=st.sampled_from(SCHEMES), user=st.one_of(st.none(), plain_text.filter(bool)),
       password=st.one_of(st.none(), secrets()), host_list=st.lists(hosts, max_size=3),
       path=plain_text, plain=st.dictionaries(st.sampled_from(PLAIN_NAMES), plain_text),
       hidden=st.dictionaries(st.sampled_from(SECRET_NAMES), secrets(), max_size=2))
def test_encoded_url_parses_to_its_parts_and_never_shows_a_secret(  # noqa: PLR0917
        scheme: str, user: str | None, password: str | None,
        host_list: list[tuple[str, int | None]], path: str, plain: dict[str, str],
        hidden: dict[str, str]) -> None:
    auth = ""
    if user is not None or password is not None:
        auth = quote(user or "", safe="")
        auth += f":{quote(password, safe='')}" if password is not None else ""
        auth += "@"
    query = {**plain, **hidden}
    text = (f"{scheme}://{auth}{','.join(_host_text(h, p) for h, p in host_list)}"
            + (f"/{quote(path, safe='')}" if path else "")
            + ("?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
               if query else ""))
    url = URL.parse(text)
    assert (url.scheme, url.hosts, url.username, url.path) == (
        scheme, tuple(host_list), user, path)
    assert (url.password.reveal() if url.password else None) == password
    assert {k: v.reveal() if isinstance(v, Secret) else v for k, v in url.query.items()} == query
    assert all(isinstance(url.query[k], Secret) for k in hidden)
    again = URL.parse(url.render(reveal=True))
    assert again == url and again.password == url.password
    for secret in [password or "", *hidden.values()]:
        assert_hidden(renderings(url), secret)


@many
@given(scheme=st.sampled_from(SCHEMES), password=secrets(), host=hosts,
       tail=st.sampled_from(["", "/vhost", "?heartbeat=5", "/0?tls=false"]))
def test_unencoded_password_parses_exactly_or_is_refused_without_showing(
        scheme: str, password: str, host: tuple[str, int | None], tail: str) -> None:
    text = f"{scheme}://user:{password}@{_host_text(*host)}{tail}"
    try:
        url = URL.parse(text)
    except ConfigurationError as exc:
        assert_hidden([str(exc), repr(exc)], password)
        if any(c in password for c in "/?#"):
            assert "percent-encode" in str(exc) or "percent-encoded" in str(exc)
        return
    assert not any(c in password for c in "/?#"), "a password with / ? # must be refused"
    assert url.hosts == (host,) and url.username == "user"
    if "%" not in password:
        assert url.password is not None and url.password.reveal() == password
    assert_hidden(renderings(url), password)


@many
@given(name=st.sampled_from(SECRET_NAMES), token=secrets(exclude="&"),
       scheme=st.sampled_from(SCHEMES))
def test_unencoded_query_secret_parses_or_is_refused_without_showing(
        name: str, token: str, scheme: str) -> None:
    """An unencoded ``&`` cannot be told from a parameter separator (documented); every
    other character either parses or is refused without the value showing."""
    text = f"{scheme}://host:1/x?heartbeat=5&{name}={token}&tls=true"
    try:
        url = URL.parse(text)
    except ConfigurationError as exc:
        assert_hidden([str(exc), repr(exc)], token)
        return
    assert isinstance(url.query[name], Secret)
    if not any(c in token for c in "%+"):
        assert url.query[name] == Secret(token)
    assert_hidden(renderings(url), token)


url_texts = st.one_of(
    st.text(max_size=40),
    st.builds(lambda s, rest: s + "".join(rest), st.sampled_from([f"{s}://" for s in SCHEMES]),
              st.lists(st.sampled_from([*"ZQab09:/?#[]@&=%+,. é", "%2F", "%4", "%ff", "%C3%A9"]),
                       max_size=30)))


@many
@given(text=url_texts)
def test_any_text_parses_or_raises_configuration_error(text: str) -> None:
    try:
        url = URL.parse(text)
    except ConfigurationError as exc:
        assert str(exc)  # names the problem
        return
    again = URL.parse(url.render(reveal=True))
    assert again == url and again.password == url.password


@pytest.mark.parametrize("value", [None, 5, b"amqp://h", ["memory://"]])
def test_non_text_url_is_a_configuration_error(value: object) -> None:
    with pytest.raises(ConfigurationError, match="non-empty string"):
        URL.parse(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("text, fragment", [
    ("amqp://user:ZQaaaa/ZQbbbb@127.0.0.1:1", "percent-encode"),
    ("amqp://user:ZQaaaa?ZQbbbb@127.0.0.1:1", "percent-encode"),
    ("amqp://user:ZQaaaa#ZQbbbb@127.0.0.1:1", "#"),
    ("amqp://user:ZQaaaa@ZQbbbb/ZQcccc@127.0.0.1:1", "percent-encode"),
    ("kafka://user:ZQaaaa@host:notaport", "invalid port 'notaport'"),
    ("user:ZQaaaa@host:9092", "not a URL"),
    ("nats://h?token=ZQaaaa&ZQbbbb", "has no '='"),
    ("nats://h?token=ZQaaaa%ff", "parameter 'token' in the URL is not valid percent-encoded UTF-8"),
    ("amqp://user:ZQaaaa%ff@h", "the password in the URL is not valid"),
])
def test_reserved_characters_in_secrets_are_refused_by_name(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as info:
        URL.parse(text)
    assert_hidden([str(info.value)], "ZQaaaa ZQbbbb ZQcccc")


def test_a_password_with_an_at_sign_parses() -> None:
    url = URL.parse("amqp://user:ZQaaaa@ZQbbbb@h:1/v")
    assert url.password == Secret("ZQaaaa@ZQbbbb") and url.hosts == (("h", 1),)


@pytest.mark.parametrize("text, fragment", [
    ("kafka://h:١٢", "invalid port"), ("kafka://h:²", "invalid port"),
    ("kafka://h:", "invalid port"),
    ("kafka://a b:1", "invalid host"), ("kafka://h\n:1", "invalid host"),
])
def test_odd_ports_and_hosts_are_configuration_errors(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        URL.parse(text)


# -- objects holding secrets ----------------------------------------------------------


def test_secret_query_values_are_secrets_in_query_asdict_and_params() -> None:
    url = URL.parse("nats://h?token=ZQtokn&heartbeat=5")
    assert isinstance(url.query["token"], Secret) and url.query["heartbeat"] == "5"
    params = ConnectParams(url, {**url.query, "password": "ZQpass"})
    assert isinstance(params.options["password"], Secret)
    for shown in [*renderings(url), repr(params), repr(dataclasses.asdict(params))]:
        assert_hidden([shown], "ZQtokn ZQpass")
    built = URL("nats", (("h", None),), password="ZQpass",  # type: ignore[arg-type]
                query={"token": "ZQtokn"})
    assert isinstance(built.password, Secret) and isinstance(built.query["token"], Secret)
    assert_hidden(renderings(built), "ZQtokn ZQpass")


def test_traceback_with_locals_shows_no_connect_params_secret() -> None:
    def driver_code(params: ConnectParams) -> None:
        url = params.url
        options = dict(params.options)
        raise RuntimeError(f"failed on {url} with {len(options)} options")

    params = resolve("nats://h:1?token=ZQtokn", {"password": "ZQpass"}).params
    with pytest.raises(RuntimeError) as info:
        driver_code(params)
    text = "".join(traceback.TracebackException.from_exception(
        info.value, capture_locals=True).format())
    assert "params = ConnectParams(" in text
    assert_hidden([text], "ZQtokn ZQpass")


def test_secret_holds_text_only() -> None:
    with pytest.raises(ConfigurationError, match="a secret must be a string"):
        Secret(5)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class _Opts:
    token: Secret | None = None
    session_timeout_ms: int = 10
    mode: str = "a"


@some
@given(secret=secrets())
def test_secret_named_values_convert_and_never_show_in_options_or_errors(secret: str) -> None:
    opts = parse_options(_Opts, {"token": Secret(secret), "session_timeout_ms": Secret("7")})
    assert opts.token == Secret(secret) and opts.session_timeout_ms == 7
    assert_hidden([repr(opts), str(opts)], secret)
    assert parse_options(_Opts, {"token": Secret("")}).token is None
    for bad in ({"session_timeout_ms": Secret(secret)}, {"token": 5}):
        with pytest.raises(ConfigurationError) as info:
            parse_options(_Opts, bad)
        assert_hidden([str(info.value)], secret)


def _adapter_option_classes() -> list[type]:
    import mqkit_kafka._options
    import mqkit_nats._options
    import mqkit_rabbitmq._options
    import mqkit_redis._options
    import mqkit_sqs._options
    found = []
    for module in (mqkit_kafka._options, mqkit_nats._options, mqkit_rabbitmq._options,
                   mqkit_redis._options, mqkit_sqs._options):
        found += [v for v in vars(module).values() if isinstance(v, type)
                  and dataclasses.is_dataclass(v) and v.__module__ == module.__name__
                  and v.__name__.endswith("Options")]
    return found


@some
@given(secret=secrets())
def test_adapter_options_never_show_their_secrets(secret: str) -> None:
    classes = _adapter_option_classes()
    assert len(classes) >= 5
    for cls in classes:
        hints = get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls) if Secret in getattr(
            hints[f.name], "__args__", (hints[f.name],))]
        assert names, cls
        for name in names:
            assert is_secret_name(name), (cls, name)
            try:
                opts: object = parse_options(cls, {name: secret})
            except ConfigurationError as exc:  # a rule such as "token excludes user"
                assert_hidden([str(exc)], secret)
                continue
            assert_hidden([repr(opts), str(opts)], secret)


# -- on memory://: clients, errors and the CLI -----------------------------------------


@some
@given(password=secrets(), token=secrets())
def test_memory_client_objects_and_errors_never_show_secrets(password: str, token: str) -> None:
    url = f"memory://user:{quote(password, safe='')}@sec-{uuid.uuid4().hex[:8]}"
    both = f"{password} {token}"
    shown: list[str] = []
    with mqkit.connect(url) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as producer, client.consumer("t", "g") as consumer:
            producer.send(b"x")
            got = consumer.receive(1, timeout=1)
            shown += [repr(client), str(client), repr(client.url), repr(producer),
                      repr(consumer), repr(got), repr(client.admin),
                      repr(client._resolved), repr(client._resolved.params)]
            got[0].ack()
        with pytest.raises(MQError) as info:
            client.admin.create_group("no-such-topic", "g")
        shown.append(str(info.value))
    with pytest.raises(MQError) as closed:
        client.producer("t").send(b"x")
    shown.append(str(closed.value))
    for kwargs in ({"token": token}, {"password": token}, {"session_token": token}):
        with pytest.raises(ConfigurationError) as unknown:
            mqkit.connect(url, **kwargs)
        shown.append(str(unknown.value))
    with pytest.raises(ConfigurationError) as in_query:
        mqkit.connect(f"{url}?token={quote(token, safe='')}")
    shown.append(str(in_query.value))
    assert_hidden(shown, both)


@some
@given(password=secrets())
def test_memory_connect_with_unencoded_password_works_or_is_refused_unseen(
        password: str) -> None:
    url = f"memory://user:{password}@sec-{uuid.uuid4().hex[:8]}"
    try:
        with mqkit.connect(url) as client:
            shown = [repr(client), str(client.url)]
    except MQError as exc:
        assert isinstance(exc, ConfigurationError)
        shown = [str(exc)]
    assert_hidden(shown, password)


def test_async_client_repr_never_shows_the_password() -> None:
    async def go() -> list[str]:
        async with mqkit.aio.connect("memory://u:ZQpass@sec-aio") as client:
            return [repr(client), str(client.url)]

    assert_hidden(asyncio.run(go()), "ZQpass")


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = cli_main(list(argv))
    return status, out.getvalue() + err.getvalue()


@some
@given(password=secrets())
def test_cli_doctor_never_shows_the_password(password: str) -> None:
    status, output = _cli("doctor", f"memory://u:{quote(password, safe='')}@doc")
    assert status == 0 and "broker" in output and "u:***@doc" in output
    assert_hidden([output], password)
    status, output = _cli("doctor", f"memory://u:{password}@doc")  # unencoded
    assert status == 0 if not any(c in password for c in "/?#") else status == 1
    assert_hidden([output], password)


def test_cli_doctor_issue_example_in_a_process() -> None:
    """The example of issue 14, run as a user would: ``ZQa`` was printed."""
    run = subprocess.run([sys.executable, "-m", "mqkit.cli", "doctor",
                          "amqp://user:ZQaaaa/ZQbbbb@127.0.0.1:1"],
                         capture_output=True, text=True, timeout=60, env=os.environ.copy(),
                         check=False)
    assert run.returncode == 1
    assert "ConfigurationError" in run.stderr and "percent-encode" in run.stderr
    assert_hidden([run.stdout + run.stderr], "ZQaaaa ZQbbbb")


# -- logs --------------------------------------------------------------------------------


LIBRARY_SHAPES = (
    ("kafka.admin.client", "Starting KafkaAdminClient with configuration: %s",
     lambda s: ({"sasl_plain_password": s, "client_id": "mqkit"},)),
    ("botocore.endpoint", "Sending http request: %s",
     lambda s: ({"X-Amz-Security-Token": s.encode(), "X-Amz-Date": b"20260101"},)),
    ("botocore.auth", "CanonicalRequest:\n%s", lambda s: (f"host:h\nx-amz-security-token:{s}\n",)),
    ("pika.connection", "params %r", lambda s: (f"amqp://u:{quote(s, safe='')}@h",)),
    ("nats.aio.client", "connect %s", lambda s: (f'{{"auth_token": {s!r}}}',)),
    ("redis.connection", "auth %s", lambda s: (repr([s]),)),
)


@some
@given(secret=secrets())
def test_registered_secrets_never_show_in_any_log_record(secret: str) -> None:
    ConnectParams(URL("memory"), {"token": secret})  # registers it, as connect does
    with debug_logs() as logs:
        for name, message, args in LIBRARY_SHAPES:
            logging.getLogger(name).debug(message, *args(secret))
        app = logging.getLogger("an.application")
        app.info("plain %s, repr %r, bytes %r", secret, secret, secret.encode())
        try:
            raise ValueError(f"native error holding {secret}")
        except ValueError:
            app.exception("it failed")
    assert len(logs.lines) == len(LIBRARY_SHAPES) + 2
    assert_hidden(logs.lines, secret)


@some
@given(secret=secrets(exclude="'\"\\ ,;&()[]{}|\t\u00a0"))
def test_library_credentials_mqkit_never_saw_are_hidden_by_key(secret: str) -> None:
    """A token botocore found in the environment, a password in a library's config dump."""
    with debug_logs() as logs:
        for name, message, args in LIBRARY_SHAPES[:3]:
            logging.getLogger(name).debug(message, *args(secret))
        logging.getLogger("mqkit.x").debug("url %s", f"amqp://u:{quote(secret, safe='')}@h")
    assert_hidden(logs.lines, secret)


def test_key_redaction_keeps_ordinary_fields() -> None:
    text = _redact.redact("{'session_timeout_ms': 10000, 'api_key': 18, 'client_id': 'mqkit'}")
    assert text == "{'session_timeout_ms': 10000, 'api_key': 18, 'client_id': 'mqkit'}"
    assert _redact.redact("{'sasl_plain_password': 'pw', 'x': 1}") == \
        "{'sasl_plain_password': ***, 'x': 1}"


def test_redaction_survives_a_factory_set_later() -> None:
    ConnectParams(URL("memory"), {"token": "ZQlate"})
    logging.setLogRecordFactory(logging.LogRecord)  # an application replaces the factory
    try:
        with debug_logs() as logs:
            logging.getLogger("kafka").debug("before %s", "ZQlate")
        assert shown_chunks(logs.lines[0], "ZQlate")  # not chained: redaction is off
        ConnectParams(URL("memory"), {"token": "ZQnext"})  # the next connect reinstalls it
        with debug_logs() as logs:
            logging.getLogger("kafka").debug("after %s %s", "ZQlate", "ZQnext")
        assert_hidden(logs.lines, "ZQlate ZQnext")
    finally:
        _redact.install()


def test_bad_log_format_arguments_are_redacted_too() -> None:
    ConnectParams(URL("memory"), {"token": "ZQfmtx"})
    with debug_logs() as logs:
        logging.getLogger("kafka").debug("two %s %s", "ZQfmtx")  # noqa: PLE1206 - on purpose
    assert logs.lines and "arguments" in logs.lines[0]
    assert_hidden(logs.lines, "ZQfmtx")


def test_short_secrets_are_only_hidden_by_key() -> None:
    ConnectParams(URL("memory"), {"token": "abc"})
    with debug_logs() as logs:
        logging.getLogger("an.application").info("abc is a word")
    assert logs.lines == ["an.application INFO abc is a word"]


def test_connect_registers_secrets_before_the_library_sees_them() -> None:
    params = resolve("sqs://id:ZQkey1@h:1?session_token=ZQsess", {"key_password": "ZQkpw9"})
    assert isinstance(params.params.options["session_token"], Secret)
    with debug_logs() as logs:
        logging.getLogger("urllib3.connectionpool").debug("%s %s %s", "ZQkey1", "ZQsess",
                                                          "ZQkpw9")
    assert_hidden(logs.lines, "ZQkey1 ZQsess ZQkpw9")



class _NativeError(Exception):
    pass


@some
@given(secret=secrets())
def test_mapped_native_errors_never_show_a_secret_in_any_form(secret: str) -> None:
    """A client library's exception text may hold a secret as repr, bytes or in a config."""
    from mqkit.driver import ErrorTable

    resolved = resolve(f"memory://u:{quote(secret, safe='')}@x", {})
    native = _NativeError(f"bad login {secret!r} {secret.encode()!r} {{'sasl_password': 'pw'}}")
    table = ErrorTable("test", [(_NativeError, mqkit.PermissionDenied)])
    mapped = table.map(native, "connect")
    assert isinstance(mapped, mqkit.PermissionDenied)
    with pytest.raises(mqkit.BackendError) as wrapped:
        with resolved.errors():
            raise native
    shown = [str(mapped), str(wrapped.value)]
    assert all("'sasl_password': ***" in text for text in shown)
    assert_hidden(shown, secret)
