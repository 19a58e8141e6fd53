"""Typed payloads (issue 15, item 2): annotation -> decoder, value -> body + content type.

Round trips ``encode_value`` -> ``decoder_for(type(value))`` for every supported kind;
arbitrary bodies either decode or raise ``PayloadError`` (never another exception);
unsupported annotations are refused up front by name; pydantic and msgspec are never
imported by mqkit itself.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import inspect
import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Any, Optional

import msgspec
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mqkit
import mqkit.aio
import mqkit.driver
from mqkit._payloads import decoder_for, encode_value

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Item:
    sku: str
    qty: int


@dataclasses.dataclass
class Order:
    id: int
    items: list[Item]
    price: float
    paid: bool
    note: Optional[str] = None  # noqa: UP045  (Optional is a case of its own)
    tags: dict[str, int] = dataclasses.field(default_factory=dict)
    parent: Item | None = None
    extra: Any = None
    meta: Annotated[dict[str, Any], "free-form"] = dataclasses.field(default_factory=dict)
    total: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.id < 0:
            raise ValueError("id must not be negative")
        self.total = sum(item.qty for item in self.items)


@dataclasses.dataclass(frozen=True)
class Node:
    value: int
    children: list[Node] = dataclasses.field(default_factory=list)


class PItem(pydantic.BaseModel):
    sku: str
    qty: int


class POrder(pydantic.BaseModel):
    id: int
    items: list[PItem]
    note: str | None = None


class SOrder(msgspec.Struct):
    id: int
    skus: list[str]
    note: str | None = None


@pydantic.dataclasses.dataclass
class PDataclass:
    id: int


finite = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = st.none() | st.booleans() | st.integers() | finite | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)
items = st.builds(Item, sku=st.text(), qty=st.integers())
orders = st.builds(
    Order, id=st.integers(min_value=0), items=st.lists(items, max_size=3), price=finite,
    paid=st.booleans(), note=st.none() | st.text(),
    tags=st.dictionaries(st.text(), st.integers(), max_size=3),
    parent=st.none() | items, extra=json_values,
    meta=st.dictionaries(st.text(), json_values, max_size=3))
nodes = st.recursive(st.builds(Node, value=st.integers()),
                     lambda inner: st.builds(Node, value=st.integers(),
                                             children=st.lists(inner, max_size=3)),
                     max_leaves=8)
p_orders = st.builds(POrder, id=st.integers(),
                     items=st.lists(st.builds(PItem, sku=st.text(), qty=st.integers()),
                                    max_size=3),
                     note=st.none() | st.text())
s_orders = st.builds(SOrder, id=st.integers(), skus=st.lists(st.text(), max_size=3),
                     note=st.none() | st.text())

# Every kind of annotation, for the "any body" property.
ANNOTATIONS: list[Any] = [bytes, str, Any, object, dict, list, int, float, bool, type(None),
                          dict[str, int], list[Item], Optional[Order],  # noqa: UP045
                          Order, Node, POrder, SOrder, PDataclass]


# -- round trips ------------------------------------------------------------------------


@given(st.binary())
def test_bytes_round_trip_raw(body: bytes) -> None:
    for value in (body, bytearray(body), memoryview(body)):
        encoded, content_type = encode_value(value)
        assert type(encoded) is bytes and encoded == body
        assert content_type == mqkit.RAW.content_type == "application/octet-stream"
        assert decoder_for(bytes)(encoded, content_type) is encoded


@given(st.text())
def test_str_round_trips_as_utf8_text(text: str) -> None:
    body, content_type = encode_value(text)
    assert body == text.encode("utf-8")
    assert content_type == mqkit.TEXT.content_type == "text/plain; charset=utf-8"
    assert decoder_for(str)(body, content_type) == text


@given(json_values.filter(lambda value: not isinstance(value, str)))  # str: text/plain
def test_json_values_round_trip_by_their_type_and_as_any(value: Any) -> None:
    body, content_type = encode_value(value)
    assert content_type == mqkit.JSON.content_type == "application/json"
    assert body == mqkit.JSON.encode(value)  # mqkit.JSON's encoding exactly
    decoded = decoder_for(type(value))(body, content_type)
    assert decoded == value and type(decoded) is type(value)
    assert decoder_for(Any)(body, None) == value == decoder_for(object)(body, None)


@given(orders)
def test_dataclasses_round_trip(order: Order) -> None:
    body, content_type = encode_value(order)
    assert content_type == "application/json"
    assert json.loads(body) == dataclasses.asdict(order)  # the JSON of asdict
    decoded = decoder_for(type(order))(body, content_type)
    assert decoded == order and type(decoded) is Order
    assert all(type(item) is Item for item in decoded.items)
    assert type(decoded.price) is float


@given(nodes)
def test_recursive_dataclasses_round_trip(node: Node) -> None:
    assert decoder_for(Node)(encode_value(node)[0], None) == node


@given(st.lists(items, max_size=4), st.dictionaries(st.text(), items, max_size=4))
def test_containers_of_dataclasses_round_trip(listed: list[Item],
                                              keyed: dict[str, Item]) -> None:
    assert decoder_for(list[Item])(encode_value(listed)[0], None) == listed
    assert decoder_for(dict[str, Item])(encode_value(keyed)[0], None) == keyed


@given(p_orders)
def test_pydantic_models_round_trip(order: POrder) -> None:
    body, content_type = encode_value(order)
    assert (body, content_type) == (order.model_dump_json().encode(), "application/json")
    assert decoder_for(POrder)(body, content_type) == order


@given(s_orders)
def test_msgspec_structs_round_trip(order: SOrder) -> None:
    body, content_type = encode_value(order)
    assert (body, content_type) == (msgspec.json.encode(order), "application/json")
    assert decoder_for(SOrder)(body, content_type) == order


def test_pydantic_dataclasses_decode_through_pydantic() -> None:
    assert decoder_for(PDataclass)(b'{"id": 3}', None) == PDataclass(id=3)
    with pytest.raises(mqkit.PayloadError, match=r"^body does not decode as PDataclass: "
                                                 r"PDataclass\.id: .*got 'x'$"):
        decoder_for(PDataclass)(b'{"id": "x"}', None)


PROGRAM = """
    import dataclasses
    from typing import Any
    from mqkit._payloads import decoder_for

    @dataclasses.dataclass
    class Order:
        id: int

    def f(order: Order, anything: Any) -> None:
        reveal_type(decoder_for(Order)(b"", None))
        reveal_type(decoder_for(type(order))(b"", None))
        reveal_type(decoder_for(str)(b"", None))
        reveal_type(decoder_for(bytes)(b"", None))
        reveal_type(decoder_for(dict[str, int])(b"", None))
        reveal_type(decoder_for(int | None)(b"", None))
        reveal_type(decoder_for(anything)(b"", None))
        reveal_type(decoder_for(Order))
"""


def test_the_type_checker_sees_what_a_decoder_returns(tmp_path: Path) -> None:
    from mypy import api as mypy_api

    program = tmp_path / "user.py"
    program.write_text(textwrap.dedent(PROGRAM))
    out, err, status = mypy_api.run(["--strict", "--no-incremental",
                                     "--cache-dir", str(tmp_path / "cache"), str(program)])
    revealed = [line.split("Revealed type is ", 1)[1] for line in out.splitlines()
                if "Revealed type is" in line]
    assert revealed == ['"user.Order"', '"user.Order"', '"str"', '"bytes"', '"dict[str, int]"',
                        '"Any"', '"Any"', '"def (bytes, str | None) -> user.Order"'], out + err
    assert status == 0, out + err


# -- any body: a value or a PayloadError --------------------------------------------------


def _decodes_or_payload_error(annotation: Any, body: bytes) -> None:
    decode = decoder_for(annotation)
    try:
        value = decode(body, "application/json")
    except mqkit.PayloadError as exc:
        assert isinstance(exc, mqkit.InvalidMessage)
        assert "\n" not in exc.reason and exc.reason
        assert exc.type_name in exc.reason and str(exc).endswith(exc.reason)
    else:
        if isinstance(annotation, type) and annotation not in (Any, object, float):
            assert isinstance(value, annotation)


@given(st.binary(max_size=200))
def test_any_body_decodes_or_raises_payload_error(body: bytes) -> None:
    for annotation in ANNOTATIONS:
        _decodes_or_payload_error(annotation, body)


@given(json_values | st.builds(dataclasses.asdict, orders)
       | st.fixed_dictionaries({"id": json_values, "items": json_values,
                                "price": json_values, "paid": json_values},
                               optional={"note": json_values, "zzz": json_values}))
def test_any_json_body_decodes_or_raises_payload_error(value: Any) -> None:
    body = json.dumps(value).encode()
    for annotation in ANNOTATIONS:
        _decodes_or_payload_error(annotation, body)


@pytest.mark.parametrize("annotation", ANNOTATIONS, ids=repr)
@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000, b"NaN", b"-Infinity",
                                  b"1" * 5000, b"\xef\xbb\xbf{}", b"", b"\x00"],
                         ids=["deep-array", "deep-object", "nan", "infinity", "huge-int",
                              "bom", "empty", "nul"])
def test_hostile_bodies_are_payload_errors(annotation: Any, body: bytes) -> None:
    _decodes_or_payload_error(annotation, body)
    if annotation not in (bytes, str):
        with pytest.raises(mqkit.PayloadError):
            decoder_for(annotation)(body, None)


def test_annotated_is_its_first_argument() -> None:
    assert decoder_for(Annotated[bytes, "raw"])(b"\xff", None) == b"\xff"
    assert decoder_for(Annotated[POrder, "m"])(b'{"id":1,"items":[]}', None) == POrder(
        id=1, items=[])


def test_a_json_integer_is_a_float_where_a_float_is_asked_for() -> None:
    order = decoder_for(Order)(b'{"id":1,"items":[],"price":2,"paid":false}', None)
    assert order.price == 2.0 and type(order.price) is float
    assert type(decoder_for(float)(b"3", None)) is float
    assert decoder_for(list[float])(b"[1, 2.5]", None) == [1.0, 2.5]


def test_deeply_nested_recursive_dataclass_is_a_payload_error() -> None:
    """JSON parses 800 levels; converting 400 Nodes needs 1200 frames: over the limit."""
    body = b'{"value":1,"children":[' * 400 + b'{"value":1}' + b"]}" * 400
    decode = decoder_for(Node)
    before = sys.getrecursionlimit()  # hypothesis may have raised it
    sys.setrecursionlimit(len(inspect.stack()) + 1000)
    try:
        with pytest.raises(mqkit.PayloadError) as info:
            decode(body, None)
    finally:
        sys.setrecursionlimit(before)
    assert info.value.reason == "Node: nested too deeply"


# -- what the errors say ------------------------------------------------------------------

BASE = '"id":1,"items":[],"price":1.5,"paid":true'


@pytest.mark.parametrize(("annotation", "body", "reason"), [
    (Order, '{"id":"x","items":[],"price":1,"paid":true}', "Order.id: expected int, got 'x'"),
    (Order, '{"id":true,"items":[],"price":1,"paid":true}', "Order.id: expected int, got true"),
    (Order, '{"id":1,"items":[{"sku":"a","qty":1},{"sku":"b","qty":"x"}],"price":1,'
            '"paid":true}', "Order.items[1].qty: expected int, got 'x'"),
    (Order, '{"id":1,"items":[],"price":"1","paid":true}', "Order.price: expected float, got '1'"),
    (Order, '{"id":1,"items":[],"price":1e999999999,"paid":true}', None),  # inf: a float
    (Order, '{"id":1,"items":[],"price":' + "9" * 400 + ',"paid":true}',
     "Order.price: expected float, got an integer out of float range"),
    (Order, '{"id":1,"items":{},"price":1,"paid":true}',
     "Order.items: expected array, got an object"),
    (Order, "{" + BASE + ',"tags":{"a b":"x"}}', "Order.tags['a b']: expected int, got 'x'"),
    (Order, "{" + BASE + ',"parent":[]}', "Order.parent: expected an object, got an array"),
    (Order, '{"id":1,"price":1,"paid":true}', "Order.items: missing required field"),
    (Order, '{"id":1}', "Order.items: missing required field (and 2 more)"),
    (Order, "{" + BASE + ',"surprise":1}', "Order.surprise: unknown field"),
    (Order, "{" + BASE + ',"total":99}', None),  # init=False: present, ignored
    (Order, '{"id":-1,"items":[],"price":1,"paid":true}',
     "Order: ValueError: id must not be negative"),
    (Order, "[]", "Order: expected an object, got an array"),
    (Order, "{", "Order: body is not valid JSON: Expecting property name enclosed in double "
                 "quotes: line 1 column 2 (char 1) (content type application/json)"),
    (Order, "NaN", "Order: body is not valid JSON: NaN is not JSON "
                   "(content type application/json)"),
    (list[Item], '[{"sku":"a","qty":1},{"sku":"a"}]', "list[Item][1].qty: missing required field"),
    (dict, "[]", "dict: expected object, got an array"),
    (int, "1.5", "int: expected int, got 1.5"),
    (type(None), "0", "None: expected null, got 0"),
    (str, b"\xff", "str: body is not UTF-8 text: 'utf-8' codec can't decode byte 0xff in "
                   "position 0: invalid start byte (content type application/json)"),
    (POrder, '{"id":1,"items":[{"sku":"a","qty":"x"}]}',
     "POrder.items[0].qty: Input should be a valid integer, unable to parse string as an "
     "integer, got 'x'"),
    (POrder, '{"id":"x","items":[{"sku":1,"qty":"x"}]}',
     "POrder.id: Input should be a valid integer, unable to parse string as an integer, got "
     "'x' (and 2 more)"),
    (SOrder, '{"id":1,"skus":["a",2]}', "SOrder.skus[1]: Expected `str`, got `int`"),
    (SOrder, '{"skus":[]}', "SOrder: Object missing required field `id`"),
])
def test_payload_errors_name_the_field(annotation: Any, body: str | bytes,
                                       reason: str | None) -> None:
    raw = body if isinstance(body, bytes) else body.encode()
    decode = decoder_for(annotation)
    if reason is None:
        decode(raw, "application/json")
        return
    with pytest.raises(mqkit.PayloadError) as info:
        decode(raw, "application/json")
    assert info.value.reason == reason
    assert str(info.value) == f"body does not decode as {info.value.type_name}: {reason}"


def test_the_library_error_is_the_cause() -> None:
    with pytest.raises(mqkit.PayloadError) as info:
        decoder_for(POrder)(b"{}", None)
    assert isinstance(info.value.native, pydantic.ValidationError)
    with pytest.raises(mqkit.PayloadError) as info:
        decoder_for(SOrder)(b"{}", None)
    assert isinstance(info.value.native, msgspec.ValidationError)
    with pytest.raises(mqkit.PayloadError) as info:
        decoder_for(dict)(b"{", None)
    assert isinstance(info.value.native, json.JSONDecodeError)


def test_payload_error_is_exported_everywhere_and_pickles() -> None:
    assert mqkit.PayloadError is mqkit.aio.PayloadError is mqkit.driver.PayloadError
    assert issubclass(mqkit.PayloadError, mqkit.InvalidMessage)
    error = mqkit.PayloadError("Order", "Order.qty: expected int, got 'x'")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.type_name, copy.reason, str(copy)) == (error.type_name, error.reason,
                                                        str(error))


# -- refused annotations and values -----------------------------------------------------


class Colour(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Stamped:
    at: datetime.datetime


@dataclasses.dataclass
class WithInitVar:
    a: int
    b: dataclasses.InitVar[int]


@dataclasses.dataclass
class HoldsModel:
    model: PItem


@dataclasses.dataclass
class Dangling:
    x: NotDefinedAnywhere  # type: ignore[name-defined]  # noqa: F821


@pytest.mark.parametrize(("annotation", "named"), [
    (set[int], "set[int]"), (tuple[int, ...], "tuple[int, ...]"), (tuple, "tuple"),
    (int | str, "int | str"), (dict[int, str], "dict[int, str]"), (bytearray, "bytearray"),
    (datetime.datetime, "datetime"), (Colour, "Colour"), (complex, "complex"),
    (list[set[int]], "list[set[int]]"), (Stamped, "Stamped (Stamped.at is datetime)"),
    (WithInitVar, "InitVar field WithInitVar.b"), (HoldsModel, "HoldsModel.model is PItem"),
    (list[Stamped], "list[Stamped] (Stamped.at is datetime)"),
    (Dangling, "Dangling (its annotations do not resolve"), ("Order", "'Order'"),
])
def test_unsupported_annotations_are_refused_at_registration(annotation: Any,
                                                             named: str) -> None:
    with pytest.raises(mqkit.ConfigurationError) as info:
        decoder_for(annotation)
    assert named in str(info.value)


class Unknown:
    pass


@dataclasses.dataclass
class StampedValue:
    at: datetime.datetime = dataclasses.field(
        default_factory=lambda: datetime.datetime(2026, 1, 1))


@pytest.mark.parametrize(("value", "named"), [
    (object(), "object"), (Unknown(), "Unknown"), ((1, 2), "tuple"), ({1}, "set"),
    (1.5j, "complex"), (float("nan"), "float"), ({"a": float("inf")}, "dict"),
    ([object()], "list"), (StampedValue(), "StampedValue"), ("\ud800", "str"),
    (Colour.RED, "Colour"), (Order, "type"),
])
def test_unencodable_values_are_invalid_messages(value: Any, named: str) -> None:
    with pytest.raises(mqkit.InvalidMessage) as info:
        encode_value(value)
    assert named in str(info.value)
    assert not isinstance(info.value, mqkit.PayloadError)


# -- optional libraries stay unimported ---------------------------------------------------


def test_mqkit_never_imports_pydantic_or_msgspec() -> None:
    code = textwrap.dedent("""
        import dataclasses, sys
        import mqkit, mqkit._payloads
        from mqkit._payloads import decoder_for, encode_value

        @dataclasses.dataclass
        class A:
            x: int

        assert decoder_for(A)(encode_value(A(1))[0], None) == A(1)
        assert decoder_for(dict)(encode_value({"a": 1})[0], None) == {"a": 1}
        try:
            decoder_for(set)
        except mqkit.ConfigurationError:
            pass
        print(sorted(m for m in sys.modules
                     if m.split(".")[0] in ("pydantic", "pydantic_core", "msgspec")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.split() == ["[]"]


def test_a_library_imported_later_is_found_then() -> None:
    code = textwrap.dedent("""
        from mqkit._payloads import decoder_for
        import msgspec

        class S(msgspec.Struct):
            x: int

        print(decoder_for(S)(b'{"x": 1}', None))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "S(x=1)"
