"""botocore's errors mapped to mqkit's, declared as one :class:`ErrorTable`.

``mapped()`` re-raises any botocore error as the most specific mqkit class, ``from`` the
native error. AWS error codes decide for service errors (``ClientError``); the exception
class decides for transport and configuration errors. Refused credentials
(``InvalidClientTokenId``, ``SignatureDoesNotMatch``, ``AccessDenied``...) are
:class:`PermissionDenied`, never retried; so is any other HTTP 403 (AWS answers 403 only
for refused credentials or permissions). An error document botocore could not parse (a
query-protocol XML ``ErrorResponse`` to a JSON-protocol request, as moto sends for a
refused key: botocore then reports the HTTP status as the code and the whole XML as the
message) is read for its ``<Code>`` and ``<Message>``. Texts never hold a credential:
botocore's messages name the operation, the error code and the endpoint, never keys.
"""

from __future__ import annotations

import re

import botocore.exceptions as be

from mqkit.driver import (
    AlreadyExists,
    BackendError,
    ConfigurationError,
    ConnectTimeout,
    ErrorTable,
    InvalidMessage,
    MQError,
    NotFound,
    PermissionDenied,
    Unavailable,
    Unsupported,
)

__all__ = ["TABLE", "error_code", "map_error", "mapped"]

_CODES: dict[str, type[MQError]] = {
    "AWS.SimpleQueueService.NonExistentQueue": NotFound,
    "QueueDoesNotExist": NotFound,
    "NotFound": NotFound,
    "NotFoundException": NotFound,
    "ResourceNotFoundException": NotFound,
    "QueueAlreadyExists": AlreadyExists,
    "QueueNameExists": AlreadyExists,
    # A queue deleted less than 60 s ago cannot be created again yet: retry later.
    "AWS.SimpleQueueService.QueueDeletedRecently": Unavailable,
    "QueueDeletedRecently": Unavailable,
    "AWS.SimpleQueueService.PurgeQueueInProgress": Unavailable,
    "PurgeQueueInProgress": Unavailable,
    "Throttling": Unavailable,
    "ThrottlingException": Unavailable,
    "ThrottledException": Unavailable,
    "RequestThrottled": Unavailable,
    "RequestThrottledException": Unavailable,
    "KMSThrottling": Unavailable,
    "KMSThrottlingException": Unavailable,
    "ServiceUnavailable": Unavailable,
    "InternalError": Unavailable,
    "InternalFailure": Unavailable,
    "InternalErrorException": Unavailable,
    # The service refuses these credentials: nothing works until they change.
    "AccessDenied": PermissionDenied,
    "AccessDeniedException": PermissionDenied,
    "AuthorizationError": PermissionDenied,
    "AuthorizationErrorException": PermissionDenied,
    "AuthFailure": PermissionDenied,
    "InvalidAccessKeyId": PermissionDenied,
    "InvalidClientTokenId": PermissionDenied,
    "UnrecognizedClientException": PermissionDenied,
    "SignatureDoesNotMatch": PermissionDenied,
    "MissingAuthenticationToken": PermissionDenied,
    "ExpiredToken": PermissionDenied,
    "ExpiredTokenException": PermissionDenied,
    "InvalidSecurity": PermissionDenied,
    "OptInRequired": PermissionDenied,
    "InvalidMessageContents": InvalidMessage,
    "InvalidAttributeName": InvalidMessage,
    "InvalidAttributeValue": InvalidMessage,
    "UnsupportedOperation": Unsupported,
}

# Transport and configuration errors, most specific first: the first match wins.
_ROWS: tuple[tuple[type[BaseException], type[MQError]], ...] = (
    (be.ConnectTimeoutError, ConnectTimeout),
    (be.EndpointConnectionError, Unavailable),
    (be.ConnectionClosedError, Unavailable),
    (be.ReadTimeoutError, Unavailable),
    (be.ProxyConnectionError, Unavailable),
    (be.SSLError, Unavailable),
    (be.HTTPClientError, Unavailable),
    (be.NoCredentialsError, ConfigurationError),
    (be.PartialCredentialsError, ConfigurationError),
    (be.NoRegionError, ConfigurationError),
    (be.ProfileNotFound, ConfigurationError),
    (be.ParamValidationError, InvalidMessage),
    (OSError, Unavailable),
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(exc, be.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


_XML_CODE = re.compile(r"<Code>\s*([^<]{1,200}?)\s*</Code>")
_XML_MESSAGE = re.compile(r"<Message>\s*([^<]{0,1000}?)\s*</Message>")


def _code_and_message(exc: be.ClientError) -> tuple[str, str]:
    """The AWS error code and message, read from an unparsed XML error document when
    botocore left one as the message."""
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", ""))
    if code not in _CODES and message.lstrip().startswith("<"):
        found = _XML_CODE.search(message)
        if found:
            text = _XML_MESSAGE.search(message)
            return found.group(1), text.group(1) if text else ""
    return code, message


def _client_error(exc: BaseException) -> tuple[type[MQError], str] | None:
    """A service error decided by its AWS error code, else by its HTTP status."""
    if not isinstance(exc, be.ClientError):
        return None
    code, message = _code_and_message(exc)
    cls = _CODES.get(code)
    if cls is None:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        cls = (Unavailable if status >= 500 else PermissionDenied if status == 403
               else BackendError)
    return cls, f"{code}: {message}".rstrip(": ")


TABLE = ErrorTable(
    "sqs",
    _ROWS,
    hook=_client_error,
    catch=(be.BotoCoreError, be.ClientError, OSError),
)

map_error = TABLE.map
mapped = TABLE.mapped
