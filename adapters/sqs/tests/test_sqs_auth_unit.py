"""SQS: AWS credential and access errors map to PermissionDenied (never retried)."""

from __future__ import annotations

import botocore.exceptions as be
import pytest
from mqkit_sqs._errors import map_error, mapped

import mqkit


def _client_error(code: str, status: int = 403) -> be.ClientError:
    return be.ClientError(
        {"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "ReceiveMessage",
    )


@pytest.mark.parametrize("code", [
    "InvalidClientTokenId", "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException",
    "UnrecognizedClientException", "AuthorizationError", "AuthFailure", "ExpiredToken",
])
def test_auth_codes_are_permission_denied(code: str) -> None:
    err = map_error(_client_error(code), "receive")
    assert type(err) is mqkit.PermissionDenied
    assert str(err) == f"sqs: receive: {code}: no"


def test_cause_kept_and_unknown_codes_unchanged() -> None:
    native = _client_error("SomethingElse", 503)
    with pytest.raises(mqkit.Unavailable) as info, mapped("receive"):
        raise native
    assert info.value.__cause__ is native
    assert type(map_error(_client_error("SomethingElse", 400), "x")) is mqkit.BackendError
