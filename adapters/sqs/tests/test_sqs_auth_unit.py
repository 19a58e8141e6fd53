"""SQS: AWS credential and access errors map to PermissionDenied (never retried)."""

from __future__ import annotations

import botocore.exceptions as be
import pytest
from mqkit_sqs._errors import map_error, mapped

import mqkit


def _client_error(code: str, status: int = 403, message: str = "no",
                  operation: str = "ReceiveMessage") -> be.ClientError:
    """A ClientError as botocore raises it: the error and the full response metadata."""
    return be.ClientError(
        {"Error": {"Code": code, "Message": message},
         "ResponseMetadata": {"RequestId": "r", "HostId": "h", "HTTPStatusCode": status,
                              "HTTPHeaders": {}, "RetryAttempts": 0}},
        operation,
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


def _unparsed(code: str, message: str, status: int = 403) -> be.ClientError:
    """What botocore makes of an XML ErrorResponse to a JSON-protocol request (moto's
    answer to a refused key): the HTTP status as the code, the whole XML as the message."""
    xml = ('<?xml version="1.0" encoding="utf-8"?>\n<ErrorResponse><Errors><Error>'
           f"<Code>{code}</Code><Message>{message}</Message><Type>Sender</Type>"
           "</Error></Errors></ErrorResponse>")
    return _client_error(str(status), status, xml, "ListQueues")


@pytest.mark.parametrize("code", ["SignatureDoesNotMatch", "InvalidClientTokenId",
                                  "AccessDenied"])
def test_unparsed_xml_error_is_read_for_its_code(code: str) -> None:
    err = map_error(_unparsed(code, "refused here"), "connect")
    assert type(err) is mqkit.PermissionDenied
    assert str(err) == f"sqs: connect: {code}: refused here"  # no XML in the text


def test_unparsed_xml_with_another_code_maps_by_that_code() -> None:
    err = map_error(_unparsed("QueueDoesNotExist", "gone", status=400), "open")
    assert type(err) is mqkit.NotFound
    assert str(err) == "sqs: open: QueueDoesNotExist: gone"


def test_any_other_403_is_permission_denied_and_other_4xx_are_not() -> None:
    assert type(map_error(_client_error("SomethingNew", 403), "x")) is mqkit.PermissionDenied
    assert type(map_error(_client_error("SomethingNew", 404), "x")) is mqkit.BackendError
    html = _client_error("403", 403, "<html>Forbidden</html>", "ListQueues")
    assert type(map_error(html, "x")) is mqkit.PermissionDenied


def test_secret_never_in_the_text() -> None:
    secret = "s3cr3t/Key+Value"
    native = _unparsed("SignatureDoesNotMatch", f"calculated with {secret}")
    err = map_error(native, "connect", secrets=(secret,))
    assert type(err) is mqkit.PermissionDenied and secret not in str(err)
