"""Installing what the brokers need from Debian (apt-get, as root or with sudo -n), and the
retried command runner the other installers (Maven, pip) share."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .config import log

APT_BINARIES = {
    # apt package -> a file it installs that we need
    "rabbitmq-server": "/usr/lib/rabbitmq/bin/rabbitmq-server",
    "nats-server": "nats-server",
    "redis-server": "redis-server",
}
JAVA_PACKAGES = {"java": "openjdk-17-jre-headless", "mvn": "maven"}


def have(binary: str) -> bool:
    """Whether ``binary`` (an absolute path, or a name on PATH) is there."""
    return Path(binary).exists() if binary.startswith("/") else shutil.which(binary) is not None


def run(
    cmd: Sequence[str], *, env: dict[str, str] | None = None, what: str, attempts: int = 3
) -> None:
    """Run an install step; retried, since a mirror or Maven Central can hiccup in CI.
    The last failure ends the script with the command's output."""
    for attempt in range(1, attempts + 1):
        log(f"{what}: {' '.join(cmd)}" + (f" (attempt {attempt})" if attempt > 1 else ""))
        proc = subprocess.run(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            return
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        if attempt == attempts:
            sys.exit(f"brokers: {what} failed (exit {proc.returncode}):\n{tail}")
        log(f"{what} failed (exit {proc.returncode}), retrying in {5 * attempt}s:\n{tail}")
        time.sleep(5 * attempt)


def _sudo() -> list[str]:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo"):
        return ["sudo", "-n"]
    sys.exit("brokers: installing Debian packages needs root (or passwordless sudo)")


@contextlib.contextmanager
def services_forbidden(sudo: Sequence[str] = (),
                       policy: Path = Path("/usr/sbin/policy-rc.d")) -> Iterator[None]:
    """While inside, Debian package scripts may not start services (an ``apt-get install``
    of rabbitmq-server or docker.io would start Debian's own daemon, which nothing of ours
    stops). invoke-rc.d honours ``/usr/sbin/policy-rc.d``; exit 101 means "action
    forbidden". A policy already there is left as it is; ours is removed on the way out.
    Needs root (with ``sudo`` the file is not written: nothing is forbidden)."""
    placed = False
    if not policy.exists() and not sudo:
        policy.write_text("#!/bin/sh\n# placed by mqkit during apt-get install\nexit 101\n")
        policy.chmod(0o755)
        placed = True
    try:
        yield
    finally:
        if placed:
            policy.unlink(missing_ok=True)


def install_apt(backends: Sequence[str]) -> None:
    """apt-get install the servers (and Java and Maven for Kafka) that are missing, without
    letting the packages start Debian's own services."""
    wanted = [
        pkg
        for pkg, binary in APT_BINARIES.items()
        if pkg.split("-")[0] in backends and not have(binary)
    ]
    if "kafka" in backends:
        wanted += [pkg for binary, pkg in JAVA_PACKAGES.items() if not have(binary)]
    if not wanted:
        return
    started = time.monotonic()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = _sudo()
    # Package scripts must not start Debian's own services: we run the brokers ourselves.
    with services_forbidden(sudo):
        run([*sudo, "apt-get", "update", "-q"], env=env, what="apt-get update")
        run(
            [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", *wanted],
            env=env,
            what="apt-get install",
        )
    log(f"installed {' '.join(wanted)} in {time.monotonic() - started:.0f}s")
    # Whatever a postinst may have started despite the policy is not ours: stop it.
    for service in ("rabbitmq-server", "redis-server", "nats-server"):
        init = Path("/etc/init.d") / service
        if init.exists() and service.split("-")[0] in backends:
            subprocess.run(
                [*sudo, str(init), "stop"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
