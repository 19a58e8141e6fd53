"""botocore's errors mapped to mqkit's, through one table.

``mapped()`` re-raises any botocore error as the most specific mqkit class, ``from`` the
native error. AWS error codes decide for service errors (``ClientError``); the exception
class decides for transport and configuration errors. Texts never hold a credential:
botocore's messages name the operation, the error code and the endpoint, never keys.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import botocore.exceptions as be

import mqkit

__all__ = ["error_code", "map_error", "mapped"]

# AWS error codes (SQS query and JSON protocols, SNS), most specific meaning.
_CODES: dict[str, type[mqkit.MQError]] = {
    "AWS.SimpleQueueService.NonExistentQueue": mqkit.NotFound,
    "QueueDoesNotExist": mqkit.NotFound,
    "NotFound": mqkit.NotFound,
    "NotFoundException": mqkit.NotFound,
    "ResourceNotFoundException": mqkit.NotFound,
    "QueueAlreadyExists": mqkit.AlreadyExists,
    "QueueNameExists": mqkit.AlreadyExists,
    # A queue deleted less than 60 s ago cannot be created again yet: retry later.
    "AWS.SimpleQueueService.QueueDeletedRecently": mqkit.Unavailable,
    "QueueDeletedRecently": mqkit.Unavailable,
    "AWS.SimpleQueueService.PurgeQueueInProgress": mqkit.Unavailable,
    "PurgeQueueInProgress": mqkit.Unavailable,
    "Throttling": mqkit.Unavailable,
    "ThrottlingException": mqkit.Unavailable,
    "ThrottledException": mqkit.Unavailable,
    "RequestThrottled": mqkit.Unavailable,
    "RequestThrottledException": mqkit.Unavailable,
    "KMSThrottling": mqkit.Unavailable,
    "KMSThrottlingException": mqkit.Unavailable,
    "ServiceUnavailable": mqkit.Unavailable,
    "InternalError": mqkit.Unavailable,
    "InternalFailure": mqkit.Unavailable,
    "InternalErrorException": mqkit.Unavailable,
    # The service refuses these credentials: nothing works until they change.
    "AccessDenied": mqkit.Unavailable,
    "AccessDeniedException": mqkit.Unavailable,
    "AuthorizationError": mqkit.Unavailable,
    "AuthorizationErrorException": mqkit.Unavailable,
    "InvalidClientTokenId": mqkit.Unavailable,
    "UnrecognizedClientException": mqkit.Unavailable,
    "SignatureDoesNotMatch": mqkit.Unavailable,
    "ExpiredToken": mqkit.Unavailable,
    "ExpiredTokenException": mqkit.Unavailable,
    "InvalidSecurity": mqkit.Unavailable,
    "OptInRequired": mqkit.Unavailable,
    "InvalidMessageContents": mqkit.InvalidMessage,
    "InvalidAttributeName": mqkit.InvalidMessage,
    "InvalidAttributeValue": mqkit.InvalidMessage,
    "UnsupportedOperation": mqkit.Unsupported,
}

# Transport and configuration errors, most specific first: the first match wins.
_TABLE: tuple[tuple[type[BaseException], type[mqkit.MQError]], ...] = (
    (be.ConnectTimeoutError, mqkit.ConnectTimeout),
    (be.EndpointConnectionError, mqkit.Unavailable),
    (be.ConnectionClosedError, mqkit.Unavailable),
    (be.ReadTimeoutError, mqkit.Unavailable),
    (be.ProxyConnectionError, mqkit.Unavailable),
    (be.SSLError, mqkit.Unavailable),
    (be.HTTPClientError, mqkit.Unavailable),
    (be.NoCredentialsError, mqkit.ConfigurationError),
    (be.PartialCredentialsError, mqkit.ConfigurationError),
    (be.NoRegionError, mqkit.ConfigurationError),
    (be.ProfileNotFound, mqkit.ConfigurationError),
    (be.ParamValidationError, mqkit.InvalidMessage),
    (OSError, mqkit.Unavailable),
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(exc, be.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def map_error(exc: BaseException, what: str) -> mqkit.MQError:
    """The mqkit error for ``exc`` (not raised), its text prefixed with ``what``."""
    if isinstance(exc, mqkit.MQError):
        return exc
    if isinstance(exc, be.ClientError):
        code = error_code(exc)
        cls = _CODES.get(code)
        if cls is None:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            cls = mqkit.Unavailable if status >= 500 else mqkit.BackendError
        message = exc.response.get("Error", {}).get("Message", "")
        text = f"sqs: {what}: {code}: {message}".rstrip(": ")
        if cls is mqkit.Unsupported:
            return mqkit.Unsupported("sqs", what, f"{code}: {message}")
        return cls(text)
    for native, cls in _TABLE:
        if isinstance(exc, native):
            return cls(f"sqs: {what}: {type(exc).__name__}: {exc}")
    return mqkit.BackendError(f"sqs: {what}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def mapped(what: str) -> Iterator[None]:
    """Re-raise botocore and socket errors as mqkit errors ``from`` the native error."""
    try:
        yield
    except mqkit.MQError:
        raise
    except (be.BotoCoreError, be.ClientError, OSError) as exc:
        raise map_error(exc, what) from exc
