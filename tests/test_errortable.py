"""The SPI's ErrorTable: ordering, hook, cause, secrets never in the text."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import mqkit
from mqkit.driver import ErrorTable


class Native(Exception):
    pass


class NativeChild(Native):
    pass


class Other(Exception):
    pass


TABLE = ErrorTable(
    "fake",
    ((NativeChild, mqkit.NotFound), (Native, mqkit.Unavailable),
     (OSError, mqkit.Unavailable)),
)


def test_first_matching_row_wins() -> None:
    assert type(TABLE.map(NativeChild("x"), "send")) is mqkit.NotFound
    assert type(TABLE.map(Native("x"), "send")) is mqkit.Unavailable
    reversed_table = ErrorTable("fake", tuple(reversed(TABLE.rows)))
    assert type(reversed_table.map(NativeChild("x"), "send")) is mqkit.Unavailable


def test_unmatched_is_default_and_text_has_prefix() -> None:
    err = TABLE.map(ValueError("boom"), "send to t")
    assert type(err) is mqkit.BackendError
    assert str(err) == "fake: send to t: ValueError: boom"


def test_mq_error_passes_through() -> None:
    original = mqkit.Closed("closed")
    assert TABLE.map(original, "x") is original


def test_hook_decides_first_and_none_falls_back() -> None:
    def hook(exc: BaseException) -> tuple[type[mqkit.MQError], str] | None:
        if "denied" in str(exc):
            return mqkit.PermissionDenied, "code 403"
        return None

    table = ErrorTable("fake", TABLE.rows, hook=hook)
    err = table.map(NativeChild("access denied"), "connect")
    assert type(err) is mqkit.PermissionDenied
    assert str(err) == "fake: connect: code 403"
    assert type(table.map(NativeChild("other"), "connect")) is mqkit.NotFound


def test_mapped_keeps_cause_and_lets_others_through() -> None:
    native = Native("down")
    with pytest.raises(mqkit.Unavailable) as info, TABLE.mapped("receive"):
        raise native
    assert info.value.__cause__ is native
    assert info.value.native is native
    with pytest.raises(Other), TABLE.mapped("receive"):
        raise Other("not caught")
    closed = mqkit.Closed("c")
    with pytest.raises(mqkit.Closed) as info2, TABLE.mapped("receive"):
        raise closed
    assert info2.value is closed


def test_special_constructors() -> None:
    table = ErrorTable("fake", ((Native, mqkit.MessageTooLarge), (Other, mqkit.Unsupported)))
    big = table.map(Native("too big"), "send")
    assert isinstance(big, mqkit.MessageTooLarge) and big.limit is None and big.size is None
    uns = table.map(Other("no"), "delay")
    assert isinstance(uns, mqkit.Unsupported)
    assert (uns.backend, uns.feature) == ("fake", "delay")


def test_permission_denied_is_not_unavailable() -> None:
    assert not issubclass(mqkit.PermissionDenied, mqkit.Unavailable)
    assert not issubclass(mqkit.PermissionDenied, OSError)
    assert mqkit.driver.PermissionDenied is mqkit.PermissionDenied
    assert "PermissionDenied" in mqkit.__all__


def test_driver_reexports_every_error_class() -> None:
    import mqkit._errors as errors
    driver = mqkit.driver

    for name in errors.__all__:
        assert getattr(driver, name) is getattr(errors, name), name
        assert name in driver.__all__, name


@given(secret=st.text(min_size=1), before=st.text(), after=st.text())
def test_secret_never_in_text(secret: str, before: str, after: str) -> None:
    assume(secret not in "fake: connect: Native")
    native = Native(f"{before}{secret}{after}")
    with pytest.raises(mqkit.Unavailable) as info, TABLE.mapped("connect", secrets=[secret]):
        raise native
    assert secret not in str(info.value)
    # repr is built from the scrubbed text only (its escaping may spell a short secret)
    assert info.value.args == (str(info.value),)
    assert info.value.__cause__ is native  # the native error is still there, unscrubbed


@given(secret=st.text(min_size=1), detail=st.text())
def test_secret_never_in_hook_text(secret: str, detail: str) -> None:
    assume(secret not in "fake: connect")
    table = ErrorTable("fake", (), hook=lambda e: (mqkit.PermissionDenied, detail + secret))
    err = table.map(Native(), "connect", secrets=(secret,))
    assert type(err) is mqkit.PermissionDenied
    assert secret not in str(err)


def _coded(code: str, message: str) -> tuple[type[mqkit.MQError], str]:
    return mqkit.PermissionDenied, f"{code}: {message}"


@pytest.mark.parametrize("code", ["InvalidClientTokenId", "ExpiredToken",
                                  "SignatureDoesNotMatch", "AuthorizationError"])
def test_an_error_name_with_a_credential_word_keeps_its_message(code: str) -> None:
    """A broker's error code is not a credential key: its message is kept, not hidden."""
    table = ErrorTable("fake", (), hook=lambda exc: _coded(code, str(exc)),
                       catch=(Native,))
    assert str(table.map(Native("no access"), "send")) == f"fake: send: {code}: no access"


def test_a_credential_key_in_the_message_after_an_error_name_is_still_hidden() -> None:
    err = TABLE.map(Native("login failed, token=abc123 password: 'x y'"), "connect")
    assert str(err) == "fake: connect: Native: login failed, token=*** password: ***"
