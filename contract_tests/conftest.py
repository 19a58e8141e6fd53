"""Parametrises every contract case by backend x face, finds brokers, writes the report.

Backends: ``MQKIT_CONTRACT_BACKENDS`` (comma list; default ``memory`` plus every backend
whose broker is found, plus those of ``MQKIT_CONTRACT_URLS=name=url,...`` for adapters
outside mqkit). Brokers: ``MQKIT_TEST_<BACKEND>_URL``, else testcontainers when a
Docker engine answers (``contract_tests/brokers.py``). Under ``MQKIT_REQUIRE_BACKENDS`` a
missing broker fails the case instead of skipping it, and so does a case needing a harness
ability (restarting the broker, ...) the harness lacks for it. Each case carries
``@pytest.mark.contract(N)`` (the numbers of ``CONTRACT.md``); the report at
``$MQKIT_CONFORMANCE_REPORT`` (default ``build/conformance.json``) records backend x
behaviour x face → passed / failed / unsupported (the backend's capabilities rule it out) /
harness (this harness cannot check it for that backend), and per backend the capabilities
of the client and of the topic kinds cases ran on that declare more (``*.fifo`` on SQS).
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import mqkit

from . import brokers
from ._env import HARNESS_PREFIX, UNSUPPORTED_PREFIX, Env

FACES = ("sync", "async")
_RESULTS: dict[tuple[str, int, str], dict[str, str]] = {}
_CAPS: dict[str, dict[str, object]] = {}
_TOPIC_CAPS: dict[str, dict[str, dict[str, object]]] = {}
"""Per backend, the capabilities of the topic kinds (name suffixes) cases ran on whose
declaration differs from the client's (``Env.topic_caps``): the report's
``topic_capabilities``, so the matrix can say a feature is native on such topics."""
_FOUND: dict[str, brokers.BrokerHandle | str] = {}
"""One broker per backend per test session: a container is started once and reused."""
MODES: dict[str, tuple[str, str]] = {
    "nats-core": ("nats", "mode=core"),
    "redis-pubsub": ("redis", "mode=pubsub"),
}
"""Targets that are another mode of a backend: its broker, with this query added to its URL
(used when ``MQKIT_CONTRACT_URLS`` does not name them, e.g. on the testcontainers path)."""


def _find(backend: str) -> brokers.BrokerHandle | str:
    if backend not in _FOUND:
        _FOUND[backend] = brokers.find_broker(backend)
    return _FOUND[backend]


def _with_query(url: str, query: str) -> str:
    return f"{url}&{query}" if "?" in url else f"{url}?{query}"


_PAIR_START = re.compile(r",\s*(?=[A-Za-z0-9_.-]+=[A-Za-z][A-Za-z0-9+.-]*://)")
"""A comma that starts the next ``name=scheme://`` pair: commas inside a URL (several
hosts, ``kafka://a:9092,b:9092``) are not followed by one."""
_PAIR = re.compile(r"([A-Za-z0-9_.-]+)=([A-Za-z][A-Za-z0-9+.-]*://.*)", re.DOTALL)


def parse_contract_urls(raw: str) -> dict[str, str]:
    """``name=url,name=url,...`` → {name: url}; a URL may hold commas (several hosts).

    Raises ``pytest.UsageError`` naming ``MQKIT_CONTRACT_URLS`` and the entry's position
    (never its URL, which may hold credentials) for an entry that is not
    ``name=scheme://...``, and the name for a name given twice: a typo must not quietly
    drop a backend from the run.
    """
    found: dict[str, str] = {}
    items = [item.strip() for item in _PAIR_START.split(raw.strip()) if item.strip()]
    for number, item in enumerate(items, 1):
        match = _PAIR.fullmatch(item)
        if match is None:
            # (the entry itself is not shown: a URL may hold credentials)
            raise pytest.UsageError(
                f"MQKIT_CONTRACT_URLS: entry {number} of {len(items)} is not "
                "name=scheme://... (entries are separated by commas)")
        name, url = match.groups()
        if name in found:
            raise pytest.UsageError(f"MQKIT_CONTRACT_URLS: {name!r} is given twice")
        found[name] = url
    return found


def _extra_urls() -> dict[str, str]:
    """``MQKIT_CONTRACT_URLS=name=url,...``: backends outside mqkit (third-party adapters)."""
    return parse_contract_urls(os.environ.get("MQKIT_CONTRACT_URLS", ""))


def _backends() -> list[str]:
    extra = _extra_urls()
    raw = os.environ.get("MQKIT_CONTRACT_BACKENDS", "").strip()
    if raw:
        return [b.strip() for b in raw.split(",") if b.strip()]
    found = ["memory", *extra]
    for backend in brokers.BACKENDS:
        if os.environ.get(f"MQKIT_TEST_{backend.upper()}_URL"):
            found.append(backend)
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "env" in metafunc.fixturenames:
        params = [(b, f) for b in _backends() for f in FACES]
        metafunc.parametrize("target", params, ids=[f"{b}-{f}" for b, f in params],
                             indirect=True)


@pytest.fixture
def target(request: pytest.FixtureRequest) -> tuple[str, str]:
    value: tuple[str, str] = request.param
    return value


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, so the suite runs the same outside this repository."""
    config.addinivalue_line("markers", "contract(number): the CONTRACT.md behaviour checked")


@pytest_asyncio.fixture
async def env(target: tuple[str, str]) -> AsyncIterator[Env]:
    backend, face = target
    handle = None
    required = False
    extra = _extra_urls()
    if backend == "memory":
        url = f"memory://contract-{uuid.uuid4().hex[:10]}"
    elif backend in extra:
        url = extra[backend]
    else:
        base, query = MODES.get(backend, (backend, ""))
        found = _find(base)
        if isinstance(found, str):
            if base in brokers.required_backends():
                pytest.fail(f"MQKIT_REQUIRE_BACKENDS names {base}: {found}")
            pytest.skip(found)
        handle, url = found, _with_query(found.url, query) if query else found.url
        required = base in brokers.required_backends()
    case = Env(backend, face, url, handle, required=required,
               auth_url=_auth_url(backend, url, handle))
    await case.start()
    _CAPS[backend] = case.caps.as_dict()
    try:
        yield case
    finally:
        for kind, caps in case.topic_caps.items():
            _TOPIC_CAPS.setdefault(backend, {})[kind] = caps.as_dict()
        await case.close()


def _auth_url(backend: str, url: str, handle: brokers.BrokerHandle | None) -> str | None:
    """A URL whose credentials the broker checks (contract 58):
    ``MQKIT_TEST_<BACKEND>_AUTH_URL``, else the one named after the URL's scheme (so a mode
    of a backend, e.g. nats-core, checks its broker's login too), else the one of the
    harness's container (``BrokerHandle.auth_url``)."""
    name = backend.upper().replace("-", "_")
    scheme = urllib.parse.urlsplit(url).scheme.split("+")[0].upper()
    return (os.environ.get(f"MQKIT_TEST_{name}_AUTH_URL")
            or os.environ.get(f"MQKIT_TEST_{scheme}_AUTH_URL")
            or (handle.auth_url if handle is not None else None) or None)


def _entry(report: pytest.TestReport) -> dict[str, str]:
    """A report entry: passed / failed / unsupported / harness / skipped, with the reason."""
    if report.failed:
        return {"status": "failed", "reason": str(report.longrepr).splitlines()[-1][:300]}
    if not report.skipped:
        return {"status": "passed"}
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    reason = reason.removeprefix("Skipped: ")
    for prefix, status in ((UNSUPPORTED_PREFIX, "unsupported"), (HARNESS_PREFIX, "harness")):
        if reason.startswith(prefix):
            return {"status": status, "reason": reason.removeprefix(prefix)}
    return {"status": "skipped", "reason": reason}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("contract")
    callspec = getattr(item, "callspec", None)
    if marker is None or callspec is None or "target" not in callspec.params:
        return
    backend, face = callspec.params["target"]
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        entry = _entry(report)
        for number in marker.args:
            key = (backend, int(number), face)
            previous = _RESULTS.get(key)
            if previous is None or previous["status"] == "passed" or entry["status"] == "failed":
                _RESULTS[key] = {**entry, "case": item.name}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _release_brokers()
    _write_report()


def _release_brokers() -> None:
    """Remove the containers this run started, whether it passed or failed."""
    started = any(isinstance(h, brokers.BrokerHandle) and h.provider == "testcontainers"
                  for h in _FOUND.values())
    for handle in _FOUND.values():
        if isinstance(handle, brokers.BrokerHandle):
            try:
                handle.close()
            except Exception:
                pass
    _FOUND.clear()
    if started:
        brokers.remove_run_containers()


def _write_report() -> None:
    if not _RESULTS:
        return
    path = Path(os.environ.get("MQKIT_CONFORMANCE_REPORT", "build/conformance.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"backends": {}}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            pass
    backends = data.setdefault("backends", {})
    for (backend, number, face), entry in sorted(_RESULTS.items()):
        slot = backends.setdefault(backend, {"capabilities": {}, "behaviours": {}})
        slot["capabilities"] = _CAPS.get(backend, slot.get("capabilities", {}))
        if backend in _TOPIC_CAPS:
            slot.setdefault("topic_capabilities", {}).update(_TOPIC_CAPS[backend])
        slot["behaviours"].setdefault(str(number), {})[face] = entry
    data["mqkit_version"] = mqkit.__version__
    path.write_text(json.dumps(data, indent=1, sort_keys=True))
