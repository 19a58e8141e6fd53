"""NATS hardening (issue 14): credentials that need the optional ``nkeys`` package say so.

nats-py signs nkey and ``.creds`` challenges with ``nkeys``; without it the handshake
failed with a bare error that mqkit wrapped as ``BackendError``. Now ``connect`` refuses
before any I/O with :class:`mqkit.AdapterNotInstalled` (a ``ConfigurationError``) naming
the option and the package to install.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from mqkit_nats._link import connect_kwargs
from mqkit_nats._options import NatsOptions

import mqkit
from mqkit.driver import URL, ConnectParams, parse_options

SEED = "SUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4GY"


@pytest.fixture
def no_nkeys(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "nkeys" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.mark.parametrize(("option", "value"), [("nkey_seed", SEED),
                                               ("creds_file", "/tmp/user.creds")])
def test_credentials_needing_nkeys_name_the_package(no_nkeys: None, option: str,
                                                    value: str) -> None:
    opts = parse_options(NatsOptions, {option: value})
    params = ConnectParams(url=URL.parse("nats://127.0.0.1:4222"), options={})
    with pytest.raises(mqkit.AdapterNotInstalled, match=rf"{option}.*pip install nkeys"):
        connect_kwargs(params, opts)


def test_connect_refuses_before_any_io(no_nkeys: None) -> None:
    # Port 1: were the check after the handshake, this would be a ConnectTimeout.
    with pytest.raises(mqkit.ConfigurationError, match="nkeys"):
        mqkit.connect("nats://127.0.0.1:1", nkey_seed=SEED, connect_timeout=5)


def test_with_nkeys_present_the_seed_is_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: object() if name == "nkeys" else real(name))
    opts = parse_options(NatsOptions, {"nkey_seed": SEED})
    params = ConnectParams(url=URL.parse("nats://127.0.0.1:4222"), options={})
    assert connect_kwargs(params, opts)["nkeys_seed_str"] == SEED
