"""SQS/SNS through moto servers (``python -m moto.server``; ``moto[server]`` is pip-installed
into this interpreter when missing): the shared ``sqs``, open to any key, and ``sqs-auth``,
which enforces IAM (``INITIAL_NO_AUTH_ACTION_COUNT``): once it answers, an IAM user with an
access key is made in it and the key kept in ``$MQKIT_BROKERS_HOME/sqs-auth/credentials.json``.
``sqs-auth`` starts with ``sqs``; ``stop``/``restart sqs`` leave it alone, ``down`` stops it."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from .config import PORTS, bdir, log, sqs_auth_credentials_path
from .ports import AUTH_USER, HOST, SQS_AUTH
from .supervisor import Broker, running_pid, spawn

# The IAM actions provisioning makes while moto does not check yet: its whole allowance.
SQS_AUTH_SETUP: tuple[dict[str, str], ...] = (
    {"Action": "CreateUser", "UserName": AUTH_USER},
    {"Action": "PutUserPolicy", "UserName": AUTH_USER, "PolicyName": "mqkit-all",
     "PolicyDocument": json.dumps({"Version": "2012-10-17", "Statement": [
         {"Effect": "Allow", "Action": "*", "Resource": "*"}]})},
    {"Action": "CreateAccessKey", "UserName": AUTH_USER},
)


def _moto_missing() -> bool:
    return any(importlib.util.find_spec(m) is None for m in ("moto", "flask", "flask_cors"))


def install() -> None:
    """pip install moto[server] into this interpreter when it is missing."""
    if not _moto_missing():
        return
    started = time.monotonic()
    cmd = [sys.executable, "-m", "pip", "install", "-q", "moto[server]"]
    log(f"pip install: {' '.join(cmd)}")
    proc = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 and "externally-managed" in proc.stderr:
        proc = subprocess.run(
            [*cmd, "--break-system-packages"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        sys.exit(f"brokers: pip install moto[server] failed:\n{proc.stdout}{proc.stderr}")
    importlib.invalidate_caches()
    log(f"installed moto[server] in {time.monotonic() - started:.0f}s")


def credentials() -> dict[str, str] | None:
    """The IAM access key made in the running ``sqs-auth`` moto, if it was provisioned."""
    try:
        data = json.loads(sqs_auth_credentials_path().read_text())
        return {"key": str(data["key"]), "secret": str(data["secret"]), "pid": str(data["pid"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def auth_url() -> str | None:
    """The sqs-auth moto's URL with the provisioned key, or None before provisioning."""
    creds = credentials()
    if creds is None:
        return None
    key = urllib.parse.quote(creds["key"], safe="")
    secret = urllib.parse.quote(creds["secret"], safe="")
    return f"sqs://{key}:{secret}@{HOST}:{PORTS[SQS_AUTH]}?region=us-east-1&tls=false"


def moto_query(port: int, service: str, params: dict[str, str], key: str = "testing",
               timeout: float = 3.0) -> tuple[int, str]:
    """A query-protocol POST to moto, signed with a dummy signature (moto routes by the
    credential scope; it checks the signature only where it enforces IAM): status, body."""
    req = urllib.request.Request(
        f"http://{HOST}:{port}/",
        data=urllib.parse.urlencode(params).encode(),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={key}/20240101/us-east-1/{service}/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return int(r.status), r.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def probe(timeout: float = 3.0) -> str | None:
    """SQS ListQueues (query protocol) against moto; any credentials are accepted."""
    body = b"Action=ListQueues&Version=2012-11-05"
    req = urllib.request.Request(
        f"http://{HOST}:{PORTS['sqs']}/",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            # moto routes a request to a service by the credential scope of the signature.
            "Authorization": (
                "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sqs/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
        },
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        text = r.read().decode(errors="replace")
        if r.status != 200 or "ListQueuesResponse" not in text:
            return f"ListQueues answered HTTP {r.status}: {text[:120]!r}"
    return None


def probe_auth(timeout: float = 3.0) -> str | None:
    """The IAM-enforcing moto: provisioned for the running process, and refusing an
    unknown key (ListQueues as ``testing`` answers 403 InvalidClientTokenId)."""
    creds = credentials()
    if creds is None:
        return "no IAM user provisioned yet"
    if creds["pid"] != str(running_pid(SQS_AUTH)):
        return "its IAM user belongs to an earlier process"
    status, text = moto_query(PORTS[SQS_AUTH], "sqs",
                              {"Action": "ListQueues", "Version": "2012-11-05"},
                              timeout=timeout)
    if status != 403 or "InvalidClientTokenId" not in text:
        return f"an unknown key got HTTP {status}, not 403 InvalidClientTokenId: {text[:120]!r}"
    return None


def access_key(body: str) -> tuple[str, str] | str:
    """The (key, secret) of a CreateAccessKey answer, else why there is none."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        return f"CreateAccessKey answered no XML ({exc}): {body[:160]!r}"
    # Match by local name: moto's IAM responses carry the IAM namespace.
    found = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
    key, secret = found.get("AccessKeyId"), found.get("SecretAccessKey")
    if not key or not secret:
        return f"CreateAccessKey gave no key: {body[:160]!r}"
    return key, secret


def provision_auth(timeout: float = 3.0) -> str | None:
    """Create AUTH_USER with an allow-all policy and an access key in the running
    ``sqs-auth`` moto, within its no-auth allowance, and keep the key in
    credentials.json. None when done (or done already), else why not (yet)."""
    pid = running_pid(SQS_AUTH)
    creds = credentials()
    if creds is not None and creds["pid"] == str(pid):
        return None
    try:
        with urllib.request.urlopen(f"http://{HOST}:{PORTS[SQS_AUTH]}/moto-api/data.json",
                                    timeout=timeout) as r:
            r.read()
    except (OSError, urllib.error.URLError) as exc:
        return f"not answering yet ({exc})"
    body = ""
    for params in SQS_AUTH_SETUP:
        status, body = moto_query(PORTS[SQS_AUTH], "iam",
                                  {**params, "Version": "2010-05-08"}, timeout=timeout)
        if status != 200:
            return f"IAM {params['Action']} answered HTTP {status}: {body[:160]!r}"
    found = access_key(body)
    if isinstance(found, str):
        return found
    key, secret = found
    path = sqs_auth_credentials_path()
    path.write_text(json.dumps({"key": key, "secret": secret, "pid": pid}) + "\n")
    path.chmod(0o600)
    log(f"{SQS_AUTH}: IAM user {AUTH_USER} with access key {key} provisioned")
    return None


def _moto_env(**extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        **extra,
    )


def _moto_cmd(name: str) -> list[str]:
    return [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(PORTS[name])]


def start() -> None:
    base = bdir("sqs")
    base.mkdir(parents=True, exist_ok=True)
    spawn("sqs", _moto_cmd("sqs"), env=_moto_env(), cwd=base)


def start_auth() -> None:
    """The second moto, enforcing IAM after the actions that provision_auth makes."""
    base = bdir(SQS_AUTH)
    base.mkdir(parents=True, exist_ok=True)
    sqs_auth_credentials_path().unlink(missing_ok=True)
    env = _moto_env(INITIAL_NO_AUTH_ACTION_COUNT=str(len(SQS_AUTH_SETUP)))
    spawn(SQS_AUTH, _moto_cmd(SQS_AUTH), env=env, cwd=base)


BROKER = Broker(
    name="sqs",
    start=start,
    probe=probe,
    mark="moto.server",
    stop_grace=10.0,
    install=install,
    companions=(SQS_AUTH,),
    auth_url=auth_url,
)
AUTH_BROKER = Broker(
    name=SQS_AUTH,
    start=start_auth,
    probe=probe_auth,
    mark="moto.server",
    stop_grace=10.0,
    prepare=provision_auth,
    after_stop=lambda: sqs_auth_credentials_path().unlink(missing_ok=True),
)
