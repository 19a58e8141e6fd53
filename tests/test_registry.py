"""Finding adapters by scheme."""

from __future__ import annotations

import pytest

import mqkit
from mqkit import AdapterNotInstalled, ConfigurationError, _registry
from mqkit._registry import missing_library, plugin_for


def test_memory_is_always_installed() -> None:
    assert "memory" in mqkit.installed_schemes()
    assert plugin_for("memory").name == "memory"


def test_unknown_scheme_lists_installed_schemes() -> None:
    with pytest.raises(ConfigurationError) as info:
        mqkit.connect("carrierpigeon://coop")
    text = str(info.value)
    assert "unknown URL scheme 'carrierpigeon'" in text
    assert "memory" in text


def test_known_scheme_without_library_names_the_extra() -> None:
    err = missing_library("amqp", ModuleNotFoundError("No module named 'pika'"))
    assert isinstance(err, AdapterNotInstalled)
    assert "pip install 'mqkit-sdk[rabbitmq]'" in str(err)
    assert isinstance(err, ConfigurationError)


def test_planned_scheme_says_not_shipped_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_registry.PLANNED_SCHEMES, "zeromq", "ZeroMQ")
    with pytest.raises(AdapterNotInstalled, match=r"ZeroMQ adapter .* not part of this version"):
        mqkit.connect("zeromq://localhost:5555")


def test_env_url_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQKIT_URL", "carrierpigeon://coop")
    with pytest.raises(ConfigurationError, match="carrierpigeon"):
        mqkit.connect()


def test_default_is_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MQKIT_URL", raising=False)
    with mqkit.connect() as client:
        assert client.url.scheme == "memory"
        assert client.capabilities.backend == "memory"
