"""Typed payloads: a handler parameter's annotation picks how a body is decoded.

:func:`decoder_for` turns an annotation into a :data:`Decoder` once, when a handler is
registered, and refuses an annotation it cannot decode there (a
:class:`~mqkit.ConfigurationError` naming the type), so nothing is discovered per message.
:func:`encode_value` applies the same rules backwards for the sending side.

Decoding rules (the annotation decides; the message's content type is not consulted, as
with ``msg.decode(codec)``):

=================================================  =========================================
annotation                                         body
=================================================  =========================================
``bytes``                                          the body itself
``str``                                            UTF-8 text
``Any``, ``object``                                any JSON value
``dict``, ``list``, ``int``, ``float``, ``bool``,  JSON, of that type: a JSON object, array,
``None``                                           integer, number, ``true``/``false``, null
``dict[str, X]``, ``list[X]``, ``X | None``        JSON; every item converted as ``X``
a dataclass                                        a JSON object of its fields
a pydantic v2 ``BaseModel`` (or pydantic           ``model_validate_json`` (a
dataclass)                                         ``TypeAdapter``'s ``validate_json``)
a msgspec ``Struct``                               ``msgspec.json.Decoder(tp).decode``
=================================================  =========================================

JSON here is exact: UTF-8 only (no BOM, no UTF-16/32 guessing) and no ``NaN``/``Infinity``
literals, which :data:`mqkit.JSON` never writes either (its decoder is more lenient).

``X`` (in containers, optionals and dataclass fields) is one of ``Any``/``object``, ``int``
(not ``bool``), ``float`` (a JSON integer is accepted and converted), ``str``, ``bool``,
``None``, ``dict``/``dict[str, X]``, ``list``/``list[X]``, ``X | None`` (``Optional[X]``),
``Annotated[X, ...]`` (the metadata is ignored) or a dataclass; conversion is deep and
exact: a ``list[Item]`` arrives as a list of ``Item``. A dataclass body must be a JSON
object with a key for every field that has no default and no other keys (a field with
``init=False`` may be present, as ``dataclasses.asdict`` writes it, and is ignored: its
``__post_init__`` computes it); the class is then called with the fields, so a
``ValueError``/``TypeError`` from its ``__post_init__`` refuses the body too. Not decoded
(a ``ConfigurationError`` at registration): other unions, ``tuple``, ``set``, ``bytes``
inside JSON, enums, ``Literal``, ``datetime``, ``InitVar`` fields, generic dataclasses,
pydantic/msgspec models inside a dataclass, string annotations (resolve them with
``typing.get_type_hints`` first). Use a pydantic model or a msgspec struct for those.

A body that does not decode or validate is a :class:`mqkit.PayloadError` (an
``InvalidMessage``: the message will never succeed) whose ``reason`` names the field, e.g.
``Order.items[2].qty: expected int, got 'x'``; the library's own error is its
``__cause__``.

pydantic and msgspec are optional and never imported here: a class can be a pydantic model
only if the program imported pydantic, so both are looked up in ``sys.modules``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar, Union

from ._errors import ConfigurationError, InvalidMessage, PayloadError

__all__ = ["Decoder", "decoder_for", "encode_value"]

T = TypeVar("T")

Decoder = Callable[[bytes, str | None], T]
"""``decoder(body, content_type)``: the body decoded as the annotation says, or a
:class:`~mqkit.PayloadError`. Built once per handler by :func:`decoder_for`."""

OCTET_STREAM = "application/octet-stream"
TEXT_PLAIN = "text/plain; charset=utf-8"
APPLICATION_JSON = "application/json"

_SUPPORTED = ("bytes, str, Any/object, dict, list, int, float, bool, None, dict[str, X], "
              "list[X], X | None, a dataclass, a pydantic v2 model, a msgspec Struct")


# -- decoding ---------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Exact JSON: the decoder's own ``decode`` takes text, so UTF-8 is decoded first.
_json_text = json.JSONDecoder(parse_constant=_refuse_constant).decode
_NoneType = type(None)


class _Invalid(Exception):
    """Internal: a JSON value that does not fit; the path is collected on the way out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []  # innermost first


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())  # one line
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    return _short(repr(value))


def _mismatch(expected: str, value: Any) -> _Invalid:
    return _Invalid(f"expected {expected}, got {_got(value)}")


def _key_segment(key: str) -> str:
    return f".{key}" if key.isidentifier() else f"[{_short(repr(key), 40)}]"


def type_name(tp: Any) -> str:
    """How an annotation is named in errors: ``Order``, ``dict[str, int]``, ``int | None``."""
    return _short(_type_name(tp), 100)


def _type_name(tp: Any) -> str:
    if tp is None or tp is _NoneType:
        return "None"
    if tp is Ellipsis:
        return "..."
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Union or origin is types.UnionType:
        return " | ".join(_type_name(arg) for arg in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is not None and args:
        return f"{_type_name(origin)}[{', '.join(_type_name(arg) for arg in args)}]"
    if isinstance(tp, type):
        return tp.__qualname__
    return repr(tp).replace("typing.", "")


def _json(body: bytes) -> Any:
    """Exact JSON from a body; raises ``_Invalid``."""
    try:
        return _json_text(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _Invalid(f"body is not UTF-8 JSON: {_short(str(exc))}") from exc
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, int over the digit limit
        raise _Invalid(f"body is not valid JSON: {_short(str(exc))}") from exc
    except RecursionError as exc:
        raise _Invalid("body is not valid JSON: nested too deeply") from exc


def _payload_error(name: str, invalid: _Invalid, content_type: str | None) -> PayloadError:
    where = name + "".join(reversed(invalid.path))
    reason = f"{where}: {invalid.reason}"
    if content_type and not invalid.path and invalid.reason.startswith("body is not"):
        reason += f" (content type {_short(content_type, 40)})"
    return PayloadError(name, reason)


@typing.overload
def decoder_for(tp: type[T]) -> Decoder[T]: ...
@typing.overload
def decoder_for(tp: Any) -> Decoder[Any]: ...


def decoder_for(tp: Any) -> Decoder[Any]:
    """The decoder for a handler parameter annotated ``tp`` (see the module's rules).

    Built once, at registration; an annotation these rules cannot decode is a
    :class:`~mqkit.ConfigurationError` naming it. The decoder takes ``(body,
    content_type)`` and returns the value or raises :class:`~mqkit.PayloadError`.
    """
    while typing.get_origin(tp) is typing.Annotated:  # the metadata is not ours
        tp = typing.get_args(tp)[0]
    if tp is bytes:
        return _decode_bytes
    if tp is str:
        return _decode_str
    if isinstance(tp, str | typing.ForwardRef):
        text = tp if isinstance(tp, str) else tp.__forward_arg__
        raise ConfigurationError(
            f"cannot decode a payload annotated with the string {_short(text)!r}: "
            "resolve annotations with typing.get_type_hints first")
    name = type_name(tp)
    special = _library_decoder(tp, name)
    if special is not None:
        return special
    try:
        convert, exact = _converter(tp, {})
    except _Unsupported as exc:
        if exc.where:
            detail = f" ({exc.where} is {exc.what})"
        else:
            detail = f" ({exc.what})" if exc.what != name else ""
        raise ConfigurationError(
            f"cannot decode a payload as {name}{detail}; supported: {_SUPPORTED}") from None
    if convert is None:  # Any/object: any JSON value
        def decode_any(body: bytes, content_type: str | None) -> Any:
            try:
                return _json(body)
            except _Invalid as invalid:
                raise _payload_error(name, invalid, content_type) from invalid.__cause__
        return decode_any
    if exact is not None:  # dict, list, int, str, bool, None: one type check
        def decode_exact(body: bytes, content_type: str | None) -> Any:
            try:
                value = _json(body)
                if type(value) is exact:
                    return value
                return convert(value)
            except _Invalid as invalid:
                raise _payload_error(name, invalid, content_type) from invalid.__cause__
        return decode_exact

    def decode(body: bytes, content_type: str | None) -> Any:
        try:
            return convert(_json(body))
        except _Invalid as invalid:
            raise _payload_error(name, invalid, content_type) from invalid.__cause__
        except RecursionError as exc:
            raise PayloadError(name, f"{name}: nested too deeply") from exc
    return decode


def _decode_bytes(body: bytes, content_type: str | None) -> bytes:
    return body


def _decode_str(body: bytes, content_type: str | None) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _payload_error("str", _Invalid(f"body is not UTF-8 text: {_short(str(exc))}"),
                             content_type) from exc


class _Unsupported(Exception):
    def __init__(self, what: str, where: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.where = where


_Convert = Callable[[Any], Any]


def _scalar(expected: type, label: str) -> _Convert:
    def convert(value: Any) -> Any:
        if type(value) is expected:
            return value
        raise _mismatch(label, value)
    return convert


def _to_float(value: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise _Invalid("expected float, got an integer out of float range") from None
    raise _mismatch("float", value)


def _converter(tp: Any, memo: dict[type, list[_Convert]]
               ) -> tuple[_Convert | None, type | None]:
    """``(convert, exact)`` for a JSON value of type ``tp``.

    ``convert`` is ``None`` when any value fits (``Any``/``object``); ``exact`` is the one
    type for which a value is returned as it is (a fast path: no call) when there is one.
    Raises ``_Unsupported``.
    """
    if tp is Any or tp is object:
        return None, None
    if tp is None or tp is _NoneType:
        return _scalar(_NoneType, "null"), _NoneType
    if tp is int:
        return _scalar(int, "int"), int
    if tp is str:
        return _scalar(str, "str"), str
    if tp is bool:
        return _scalar(bool, "bool"), bool
    if tp is float:
        return _to_float, float
    if tp is dict:
        return _scalar(dict, "object"), dict
    if tp is list:
        return _scalar(list, "array"), list
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _converter(args[0], memo)
    if origin is Union or origin is types.UnionType:
        others = [a for a in args if a is not _NoneType]
        if len(others) != 1 or len(args) != 2:
            raise _Unsupported(f"{type_name(tp)} (only X | None unions)")
        inner, _ = _converter(others[0], memo)
        if inner is None:
            return None, None
        return _optional(inner), None
    if origin is list and len(args) == 1:
        item, _ = _converter(args[0], memo)
        return (_scalar(list, "array"), list) if item is None else (_list(item), None)
    if origin is dict and len(args) == 2:
        if args[0] is not str:
            raise _Unsupported(f"{type_name(tp)} (JSON object keys are str)")
        value, _ = _converter(args[1], memo)
        return (_scalar(dict, "object"), dict) if value is None else (_dict(value), None)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and not args:
        return _dataclass(tp, memo), None
    raise _Unsupported(type_name(tp))


def _optional(inner: _Convert) -> _Convert:
    def convert(value: Any) -> Any:
        return None if value is None else inner(value)
    return convert


def _list(item: _Convert) -> _Convert:
    def convert(value: Any) -> Any:
        if type(value) is not list:
            raise _mismatch("array", value)
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except _Invalid as invalid:
                invalid.path.append(f"[{index}]")
                raise
        return out
    return convert


def _dict(item: _Convert) -> _Convert:
    def convert(value: Any) -> Any:
        if type(value) is not dict:
            raise _mismatch("object", value)
        out = {}
        for key, element in value.items():
            try:
                out[key] = item(element)
            except _Invalid as invalid:
                invalid.path.append(_key_segment(key))
                raise
        return out
    return convert


class _Fields(typing.NamedTuple):
    """A dataclass's decoding plan."""

    # name -> (exact type or None, convert or None); None, None: any value
    fields: dict[str, tuple[type | None, _Convert | None]]
    ignored: frozenset[str]  # init=False fields: accepted, not passed
    required: tuple[str, ...]  # no default, in declaration order


def _dataclass(cls: type, memo: dict[type, list[_Convert]]) -> _Convert:
    known = memo.get(cls)
    if known is not None:
        if known:  # built already (the class is used twice)
            return known[0]
        return _deferred(known)  # a recursive reference, looked up once built
    cell: list[_Convert] = []
    memo[cls] = cell
    plan = _plan(cls, memo)
    convert = _dataclass_converter(cls, plan)
    cell.append(convert)
    return convert


def _deferred(cell: list[_Convert]) -> _Convert:
    def convert(value: Any) -> Any:
        return cell[0](value)
    return convert


def _plan(cls: type, memo: dict[type, list[_Convert]]) -> _Fields:
    name = cls.__qualname__
    if getattr(cls, "__pydantic_validator__", None) is not None:
        raise _Unsupported(f"{name} (a pydantic dataclass inside a dataclass)")
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:  # NameError for an unresolvable forward reference, ...
        raise _Unsupported(f"{name} (its annotations do not resolve: {exc})") from None
    for field_name, hint in hints.items():
        if isinstance(hint, dataclasses.InitVar):
            raise _Unsupported(f"InitVar field {name}.{field_name}")
    fields: dict[str, tuple[type | None, _Convert | None]] = {}
    ignored: set[str] = set()
    required: list[str] = []
    for field in dataclasses.fields(cls):
        if not field.init:
            ignored.add(field.name)
            continue
        try:
            convert, exact = _converter(hints[field.name], memo)
        except _Unsupported as exc:
            raise _Unsupported(exc.what, exc.where or f"{name}.{field.name}") from None
        fields[field.name] = (exact, convert)
        if (field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING):
            required.append(field.name)
    return _Fields(fields, frozenset(ignored), tuple(required))


def _at(key: str, reason: str) -> _Invalid:
    invalid = _Invalid(reason)
    invalid.path.append(_key_segment(key))
    return invalid


def _dataclass_converter(cls: type, plan: _Fields) -> _Convert:
    fields, ignored, required = plan
    n_fields = len(fields)

    def convert(value: Any) -> Any:
        if type(value) is not dict:
            raise _mismatch("an object", value)
        kwargs = {}
        for key, element in value.items():
            entry = fields.get(key)
            if entry is None:
                if key in ignored:
                    continue
                raise _at(key, "unknown field")
            exact, field_convert = entry
            if field_convert is None or type(element) is exact:
                kwargs[key] = element
                continue
            try:
                kwargs[key] = field_convert(element)
            except _Invalid as invalid:
                invalid.path.append(_key_segment(key))
                raise
        if len(kwargs) != n_fields:
            missing = [f for f in required if f not in kwargs]
            if missing:
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise _at(missing[0], f"missing required field{more}")
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:  # __post_init__ validation
            raise _Invalid(f"{type(exc).__name__}: {_short(str(exc))}") from exc

    return convert


_MSGSPEC_AT = re.compile(r"^(?P<msg>.*?) - at `\$(?P<path>[^`]*)`$", re.DOTALL)


def _library_decoder(tp: Any, name: str) -> Decoder[Any] | None:
    """The decoder for a pydantic model/dataclass or msgspec Struct, else ``None``."""
    if not isinstance(tp, type):
        return None
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None:
        validate: Callable[[bytes], Any] | None = None
        if issubclass(tp, pydantic.BaseModel):
            validate = typing.cast(Any, tp).model_validate_json
        elif dataclasses.is_dataclass(tp) and getattr(tp, "__pydantic_validator__", None):
            validate = pydantic.TypeAdapter(tp).validate_json
        if validate is not None:
            return _pydantic_decoder(validate, pydantic.ValidationError, name)
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and issubclass(tp, msgspec.Struct):
        return _msgspec_decoder(msgspec.json.Decoder(tp).decode, msgspec.DecodeError, name)
    return None


def _pydantic_decoder(validate: Callable[[bytes], Any], error: type[Exception],
                      name: str) -> Decoder[Any]:
    def decode(body: bytes, content_type: str | None) -> Any:
        try:
            return validate(body)
        except error as exc:
            raise PayloadError(name, _pydantic_reason(name, exc)) from exc
        except RecursionError as exc:
            raise PayloadError(name, f"{name}: nested too deeply") from exc
    return decode


def _pydantic_reason(name: str, exc: Any) -> str:
    errors = exc.errors(include_url=False)
    if not errors:
        return f"{name}: {_short(str(exc))}"
    first = errors[0]
    where = name + "".join(f"[{part}]" if isinstance(part, int) else _key_segment(str(part))
                           for part in first.get("loc", ()))
    reason = f"{where}: {_short(first.get('msg', ''), 100)}"
    if first.get("loc"):
        reason += f", got {_got(first.get('input'))}"
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more)"
    return reason


def _msgspec_decoder(decode_json: Callable[[bytes], Any], error: type[Exception],
                     name: str) -> Decoder[Any]:
    def decode(body: bytes, content_type: str | None) -> Any:
        try:
            return decode_json(body)
        except error as exc:
            text = str(exc)
            match = _MSGSPEC_AT.match(text)
            if match:
                path = re.sub(r"\.([^.\[]+)", lambda m: _key_segment(m[1]), match["path"])
                reason = f"{name}{path}: {_short(match['msg'], 100)}"
            else:
                reason = f"{name}: {_short(text, 100)}"
            raise PayloadError(name, reason) from exc
        except RecursionError as exc:  # msgspec's decoder recurses with the body
            raise PayloadError(name, f"{name}: nested too deeply") from exc
    return decode


# -- encoding ---------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # shallow, like asdict's output: json recurses into nested values itself
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"Object of type {type(value).__qualname__} is not JSON serializable")


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          default=_json_default).encode


def encode_value(value: Any) -> tuple[bytes, str]:
    """``(body, content_type)`` for ``value``: the decoding rules backwards.

    ``bytes``/``bytearray``/``memoryview`` are sent as they are
    (``application/octet-stream``), ``str`` as UTF-8 (``text/plain; charset=utf-8``); a
    dataclass (the JSON of its fields, as ``dataclasses.asdict``), a pydantic model
    (``model_dump_json``), a msgspec ``Struct`` (``msgspec.json.encode``) and ``dict``,
    ``list``, ``int``, ``float``, ``bool`` and ``None`` (:data:`mqkit.JSON`'s encoding:
    compact, no NaN) are ``application/json``; dataclasses may be nested in those dicts
    and lists. Anything else, or a value those encoders refuse, is an
    :class:`~mqkit.InvalidMessage` naming the type.
    """
    if isinstance(value, bytes):
        return value, OCTET_STREAM
    if isinstance(value, str):
        try:
            return value.encode("utf-8"), TEXT_PLAIN
        except UnicodeEncodeError as exc:
            raise InvalidMessage(f"cannot encode str as UTF-8: {_short(str(exc))}") from exc
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value), OCTET_STREAM
    name = type_name(type(value))
    if (isinstance(value, (dict, list, int, float)) or value is None
            or (dataclasses.is_dataclass(value) and not isinstance(value, type))):
        try:
            return _dumps(value).encode("utf-8"), APPLICATION_JSON
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidMessage(f"cannot encode {name} as JSON: {_short(str(exc))}") from exc
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        try:
            return value.model_dump_json().encode("utf-8"), APPLICATION_JSON
        except (pydantic.PydanticSerializationError, ValueError, TypeError) as exc:
            raise InvalidMessage(f"cannot encode {name} as JSON: {_short(str(exc))}") from exc
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and isinstance(value, msgspec.Struct):
        try:
            return msgspec.json.encode(value), APPLICATION_JSON
        except (msgspec.EncodeError, TypeError, ValueError) as exc:
            raise InvalidMessage(f"cannot encode {name} as JSON: {_short(str(exc))}") from exc
    raise InvalidMessage(f"cannot encode a value of type {name}: send bytes, str, a dict, "
                         "list, int, float, bool or None, a dataclass, a pydantic model or "
                         "a msgspec Struct")
