"""Kubernetes' protobuf wire format for the JSON-shaped dicts kubesim stores.

A body of type `application/vnd.kubernetes.protobuf` is the 4-byte magic `k8s\\x00` followed by
a runtime.Unknown message: typeMeta {apiVersion, kind}, raw (the object's own message),
contentEncoding and contentType (both empty). The object messages are the ones the upstream
`generated.proto` files define; `messages.json` holds their fields, generated from those files
and the Go struct tags by `scripts/generate_protobuf_tables.py`.

The dicts are what the object's JSON form would decode to: JSON names, embedded structs'
fields inlined, Quantity as a string, IntOrString as an int or a string, Time and MicroTime as
RFC 3339 strings, RawExtension and FieldsV1 as documents, `[]byte` as base64. Decoding leaves
out the zero values Go's JSON encoder would leave out (non-pointer scalars tagged omitempty),
since protobuf cannot tell them from unset ones.

Each message's fields are compiled once into lookup tables (by JSON name to encode, by field
number to decode), so encoding a list of pods is a walk over the dicts with dict lookups.
"""

import base64
import datetime
import functools
import json
import struct
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
# API group -> the proto package of its types (k8s.io/api/<directory>/<version>).
_GROUP_PACKAGES = {
    "": "core",
    "apps": "apps",
    "autoscaling": "autoscaling",
    "networking.k8s.io": "networking",
    "scheduling.k8s.io": "scheduling",
    "storage.k8s.io": "storage",
    "events.k8s.io": "events",
    "policy": "policy",
    "rbac.authorization.k8s.io": "rbac",
    "admissionregistration.k8s.io": "admissionregistration",
}

# Field kinds. Scalars first; the rest are messages, the named ones with their own JSON form.
_STRING, _BYTES, _BOOL, _INT, _DOUBLE = 0, 1, 2, 3, 4
_MESSAGE, _QUANTITY, _INT_OR_STRING, _TIME, _MICRO_TIME, _RAW, _FIELDS, _VERBS = range(5, 13)
_SCALAR_KINDS = {"string": _STRING, "bytes": _BYTES, "bool": _BOOL, "int32": _INT}
_SCALAR_KINDS |= {"int64": _INT, "double": _DOUBLE}
_CUSTOM_KINDS = {
    "k8s.io.apimachinery.pkg.api.resource.Quantity": _QUANTITY,
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": _INT_OR_STRING,
    f"{_META}.Time": _TIME,
    f"{_META}.MicroTime": _MICRO_TIME,
    "k8s.io.apimachinery.pkg.runtime.RawExtension": _RAW,
    f"{_META}.FieldsV1": _FIELDS,
    f"{_META}.Verbs": _VERBS,
}
_WIRE_TYPES = {_BOOL: 0, _INT: 0, _DOUBLE: 1}  # everything else is length-delimited (2)
_ZEROS: dict[int, Any] = {_STRING: "", _BOOL: False, _INT: 0, _DOUBLE: 0.0, _BYTES: ""}
_TYPE_KEYS = frozenset(("apiVersion", "kind"))


class ProtobufError(ValueError):
    """A body that is not a valid message, or an object that has no protobuf form."""


# --- the compiled tables ----------------------------------------------------------------


@dataclass
class _Field:
    number: int
    name: str
    kind: int
    repeated: bool
    is_map: bool
    omit_zero: bool
    inline: bool
    tag: bytes  # the encoded key (number << 3 | wire type)
    message: "Message | None" = None  # for _MESSAGE fields and the values of message maps
    value_kind: int = _STRING  # for maps: the kind of the values


@dataclass
class Message:
    name: str
    fields: list[_Field] = field(default_factory=list)
    by_number: dict[int, _Field] = field(default_factory=dict)
    # JSON name -> the field, or for an inlined struct's keys the inline field that holds them
    by_json: dict[str, _Field] = field(default_factory=dict)
    inline_keys: dict[str, _Field] = field(default_factory=dict)
    ignored_keys: frozenset[str] = frozenset()


def _key(number: int, wire_type: int) -> bytes:
    return _varint((number << 3) | wire_type)


class Tables:
    """The messages of `messages.json`, compiled on first use of each."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.source: dict[str, Any] = document["source"]
        self._rows: dict[str, list[list[Any]]] = document["messages"]
        self._compiled: dict[str, Message] = {}

    def names(self) -> list[str]:
        return sorted(self._rows)

    def message(self, name: str) -> Message:
        compiled = self._compiled.get(name)
        if compiled is not None:
            return compiled
        if name not in self._rows:
            raise ProtobufError(f"no protobuf message {name}")
        message = Message(name)
        # Registered before its fields so that recursive types (JSONSchemaProps) terminate.
        self._compiled[name] = message
        for number, json_name, label, type_name, inline, omit_zero in self._rows[name]:
            kind = _SCALAR_KINDS.get(type_name, _CUSTOM_KINDS.get(type_name, _MESSAGE))
            is_map = label == "map"
            wire_type = 2 if is_map else _WIRE_TYPES.get(kind, 2)
            entry = _Field(
                number,
                json_name,
                _MESSAGE if is_map else kind,
                label == "repeated",
                is_map,
                bool(omit_zero),
                bool(inline),
                _key(number, wire_type),
            )
            if is_map:
                entry.value_kind = kind
                if kind == _MESSAGE:
                    entry.message = self.message(type_name)
            elif kind == _MESSAGE:
                entry.message = self.message(type_name)
            message.fields.append(entry)
            message.by_number[number] = entry
            if inline:
                assert entry.message is not None
                inner = entry.message
                for key in (*inner.by_json, *inner.inline_keys):
                    message.inline_keys[key] = entry
            else:
                message.by_json[json_name] = entry
        message.ignored_keys = _TYPE_KEYS - set(message.by_json) - set(message.inline_keys)
        return message

    def for_kind(self, api_version: str, kind: str) -> Message | None:
        """The message of a kind, or None when the kind has no protobuf form.

        The meta.k8s.io/v1 kinds (Status, DeleteOptions, ...) serve in every group version,
        as upstream registers them in each.
        """
        group, _, version = api_version.rpartition("/")
        package = _GROUP_PACKAGES.get(group)
        candidates = [f"{_META}.{kind}"]
        if package is not None:
            candidates.insert(0, f"k8s.io.api.{package}.{version}.{kind}")
        for name in candidates:
            if name in self._rows:
                return self.message(name)
        return None


@functools.cache
def tables() -> Tables:
    text = resources.files("akros_kubesim.protobuf").joinpath("messages.json").read_text()
    return Tables(json.loads(text))


# --- varints and scalars ----------------------------------------------------------------

_SMALL_VARINTS = [bytes((n,)) for n in range(128)]


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL_VARINTS[value]
    if value < 0:
        value += 1 << 64  # int32 and int64 negatives are ten-byte two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    byte = data[position]
    if byte < 0x80:
        return byte, position + 1
    result, shift = 0, 0
    while True:
        if position >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[position]
        result |= (byte & 0x7F) << shift
        position += 1
        if byte < 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    size = len(payload)
    return tag + (_SMALL_VARINTS[size] if size < 128 else _varint(size)) + payload


# --- times ------------------------------------------------------------------------------

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@functools.lru_cache(maxsize=65536)
def _timestamp_payload(text: str) -> bytes:
    """metav1.Time/MicroTime as their protobuf Timestamp {seconds, nanos}."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError as error:
        raise ProtobufError(f"not an RFC 3339 time: {text!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    delta = moment - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    # Both fields always, as Go writes them: an empty payload is the zero time (JSON null).
    return b"\x08" + _varint(seconds) + b"\x10" + _varint(delta.microseconds * 1000)


@functools.lru_cache(maxsize=65536)
def _format_time(seconds: int, nanos: int, micro: bool) -> str:
    moment = _EPOCH + datetime.timedelta(seconds=seconds)
    if micro:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _decode_time(data: bytes, micro: bool) -> str | None:
    if not data:
        return None  # Go's zero time: JSON null
    seconds = nanos = 0
    position, end = 0, len(data)
    while position < end:
        key, position = _read_varint(data, position)
        value, position = _read_varint(data, position)
        if key == 0x08:
            seconds = _signed(value)
        elif key == 0x10:
            nanos = value
    return _format_time(seconds, nanos, micro)


# --- encoding ---------------------------------------------------------------------------


def _encode_scalar(kind: int, tag: bytes, value: Any) -> bytes:
    if kind == _STRING:
        return _length_delimited(tag, value.encode())
    if kind in (_INT, _BOOL):
        return tag + _varint(int(value))
    if kind == _BYTES:
        return _length_delimited(tag, base64.b64decode(value))
    if kind == _DOUBLE:
        return tag + struct.pack("<d", float(value))
    return _length_delimited(tag, _encode_value(kind, None, value))


def _encode_value(kind: int, message: Message | None, value: Any) -> bytes:
    """The payload of a length-delimited field (without its key and length)."""
    if kind == _MESSAGE:
        assert message is not None
        return encode_message(message, value)
    if kind == _QUANTITY:
        return _length_delimited(b"\x0a", str(value).encode())
    if kind in (_TIME, _MICRO_TIME):
        return _timestamp_payload(value)
    if kind == _INT_OR_STRING:
        if isinstance(value, str):
            return b"\x08\x01" + _length_delimited(b"\x1a", value.encode())
        return b"\x08\x00\x10" + _varint(int(value))
    if kind in (_RAW, _FIELDS):
        return _length_delimited(b"\x0a", orjson.dumps(value))
    if kind == _VERBS:
        return b"".join(_length_delimited(b"\x0a", verb.encode()) for verb in value)
    if kind == _STRING:
        return value.encode()  # type: ignore[no-any-return]
    if kind == _BYTES:
        return base64.b64decode(value)
    raise ProtobufError(f"cannot encode kind {kind}")


def encode_message(message: Message, obj: dict[str, Any]) -> bytes:
    """One message's fields (no envelope), in the order the dict holds them."""
    out: list[bytes] = []
    inlined: dict[int, dict[str, Any]] | None = None
    by_json = message.by_json
    for key, value in obj.items():
        if value is None:
            # A null time is Go's zero metav1.Time, which its encoder writes as an empty
            # message (and reads back as null); any other null is a field left unset.
            entry = by_json.get(key)
            if entry is not None and entry.kind in (_TIME, _MICRO_TIME):
                out.append(entry.tag + b"\x00")
            continue
        entry = by_json.get(key)
        if entry is None:
            holder = message.inline_keys.get(key)
            if holder is None:
                if key in message.ignored_keys:
                    continue
                raise ProtobufError(f"{message.name} has no field {key!r}")
            if inlined is None:
                inlined = {}
            inlined.setdefault(holder.number, {})[key] = value
            continue
        kind = entry.kind
        if entry.is_map:
            tag, value_kind, value_message = entry.tag, entry.value_kind, entry.message
            for map_key in sorted(value):
                item = value[map_key]
                payload = _length_delimited(b"\x0a", map_key.encode())
                if item is not None:
                    if value_kind < _MESSAGE:
                        payload += _encode_scalar(value_kind, b"\x12", item)
                    else:
                        payload += _length_delimited(
                            b"\x12", _encode_value(value_kind, value_message, item)
                        )
                out.append(_length_delimited(tag, payload))
        elif entry.repeated:
            if kind == _MESSAGE:
                sub = entry.message
                assert sub is not None
                for item in value:
                    out.append(_length_delimited(entry.tag, encode_message(sub, item)))
            elif kind < _MESSAGE:
                for item in value:
                    out.append(_encode_scalar(kind, entry.tag, item))
            else:
                for item in value:
                    out.append(_length_delimited(entry.tag, _encode_value(kind, None, item)))
        elif kind == _STRING:
            data = value.encode()
            size = len(data)
            out.append(entry.tag + (_SMALL_VARINTS[size] if size < 128 else _varint(size)))
            out.append(data)
        elif kind == _MESSAGE:
            assert entry.message is not None
            out.append(_length_delimited(entry.tag, encode_message(entry.message, value)))
        elif kind < _MESSAGE:
            out.append(_encode_scalar(kind, entry.tag, value))
        else:
            out.append(_length_delimited(entry.tag, _encode_value(kind, None, value)))
    if inlined:
        for number, fields in inlined.items():
            holder = message.by_number[number]
            assert holder.message is not None
            out.append(_length_delimited(holder.tag, encode_message(holder.message, fields)))
    return b"".join(out)


def _unknown(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _length_delimited(b"\x0a", api_version.encode()) + _length_delimited(
        b"\x12", kind.encode()
    )
    # contentEncoding and contentType are written empty, as Go writes them.
    return (
        MAGIC
        + _length_delimited(b"\x0a", type_meta)
        + _length_delimited(b"\x12", raw)
        + b"\x1a\x00\x22\x00"
    )


def encode(obj: dict[str, Any], api_version: str = "", kind: str = "") -> bytes:
    """An object (its apiVersion and kind from the dict unless given) as a protobuf body."""
    api_version = api_version or obj.get("apiVersion", "")
    kind = kind or obj.get("kind", "")
    message = tables().for_kind(api_version, kind)
    if message is None:
        raise ProtobufError(f"{api_version} {kind} has no protobuf form")
    return _unknown(api_version, kind, encode_message(message, obj))


def encode_watch_event(event_type: str, body: bytes) -> bytes:
    """One frame of a `stream=watch` response: a 4-byte big-endian length, then a raw
    metav1.WatchEvent (no envelope) whose object is the enveloped protobuf body."""
    object_payload = _length_delimited(b"\x0a", body)
    event = _length_delimited(b"\x0a", event_type.encode()) + _length_delimited(
        b"\x12", object_payload
    )
    return struct.pack(">I", len(event)) + event


# --- decoding ---------------------------------------------------------------------------


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """The (number, wire type, value) of each field: an int for varints and fixed, bytes
    for length-delimited ones."""
    out: list[tuple[int, int, Any]] = []
    position, end = 0, len(data)
    try:
        while position < end:
            key, position = _read_varint(data, position)
            number, wire_type = key >> 3, key & 7
            if wire_type == 2:
                size, position = _read_varint(data, position)
                if position + size > end:
                    raise ProtobufError("truncated field")
                out.append((number, 2, data[position : position + size]))
                position += size
            elif wire_type == 0:
                value, position = _read_varint(data, position)
                out.append((number, 0, value))
            elif wire_type == 1:
                out.append((number, 1, data[position : position + 8]))
                position += 8
            elif wire_type == 5:
                out.append((number, 5, data[position : position + 4]))
                position += 4
            else:
                raise ProtobufError(f"unsupported wire type {wire_type}")
    except IndexError as error:
        raise ProtobufError("truncated message") from error
    return out


def _decode_scalar(kind: int, wire_type: int, value: Any) -> Any:
    if kind == _STRING:
        return value.decode()
    if kind == _INT:
        return _signed(value)
    if kind == _BOOL:
        return bool(value)
    if kind == _BYTES:
        return base64.b64encode(value).decode()
    if kind == _DOUBLE:
        return struct.unpack("<d", value)[0]
    raise ProtobufError(f"cannot decode kind {kind}")


def _packed(kind: int, data: bytes) -> list[Any]:
    values = []
    position = 0
    while position < len(data):
        value, position = _read_varint(data, position)
        values.append(_decode_scalar(kind, 0, value))
    return values


def _decode_value(kind: int, message: Message | None, data: bytes) -> Any:
    if kind == _MESSAGE:
        assert message is not None
        return decode_message(message, data)
    if kind == _QUANTITY:
        for number, _, value in _fields(data):
            if number == 1:
                return value.decode()
        return "0"
    if kind in (_TIME, _MICRO_TIME):
        return _decode_time(data, kind == _MICRO_TIME)
    if kind == _INT_OR_STRING:
        type_, int_value, str_value = 0, 0, ""
        for number, _, value in _fields(data):
            if number == 1:
                type_ = value
            elif number == 2:
                int_value = _signed(value)
            elif number == 3:
                str_value = value.decode()
        return str_value if type_ == 1 else int_value
    if kind in (_RAW, _FIELDS):
        raw = b"".join(value for number, _, value in _fields(data) if number == 1)
        if not raw:
            return None
        if raw.startswith(MAGIC):
            return decode(raw)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise ProtobufError("an embedded object is neither JSON nor protobuf") from error
    if kind == _VERBS:
        return [value.decode() for number, _, value in _fields(data) if number == 1]
    if kind == _STRING:
        return data.decode()
    if kind == _BYTES:
        return base64.b64encode(data).decode()
    raise ProtobufError(f"cannot decode kind {kind}")


def decode_message(message: Message, data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    by_number = message.by_number
    for number, wire_type, value in _fields(data):
        entry = by_number.get(number)
        if entry is None:
            continue  # a field newer than the tables: skipped, as proto decoders do
        kind = entry.kind
        if entry.is_map:
            map_key, item = "", None
            value_kind = entry.value_kind
            for inner_number, inner_wire, inner_value in _fields(value):
                if inner_number == 1:
                    map_key = inner_value.decode()
                elif inner_number == 2:
                    if value_kind < _MESSAGE:
                        item = _decode_scalar(value_kind, inner_wire, inner_value)
                    else:
                        item = _decode_value(value_kind, entry.message, inner_value)
            if item is None and value_kind < _MESSAGE:
                item = _ZEROS[value_kind]
            obj.setdefault(entry.name, {})[map_key] = item
        elif entry.inline:
            obj.update(_decode_value(kind, entry.message, value))
        elif kind < _MESSAGE and not (kind != _STRING and kind != _BYTES and wire_type == 2):
            decoded = _decode_scalar(kind, wire_type, value)
            if entry.repeated:
                obj.setdefault(entry.name, []).append(decoded)
            elif not (entry.omit_zero and not decoded):
                obj[entry.name] = decoded
        elif kind < _MESSAGE:  # a packed repeated scalar
            obj.setdefault(entry.name, []).extend(_packed(kind, value))
        elif entry.repeated:
            obj.setdefault(entry.name, []).append(_decode_value(kind, entry.message, value))
        else:
            obj[entry.name] = _decode_value(kind, entry.message, value)
    return obj


def decode_unknown(body: bytes) -> tuple[str, str, bytes]:
    """The apiVersion, kind and raw message of an enveloped body."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the protobuf magic k8s\\x00")
    api_version = kind = ""
    raw = b""
    for number, wire_type, value in _fields(body[len(MAGIC) :]):
        if wire_type != 2:
            continue
        if number == 1:
            for inner_number, inner_wire, inner_value in _fields(value):
                if inner_wire == 2 and inner_number == 1:
                    api_version = inner_value.decode()
                elif inner_wire == 2 and inner_number == 2:
                    kind = inner_value.decode()
        elif number == 2:
            raw = value
    return api_version, kind, raw


def decode(body: bytes) -> dict[str, Any]:
    """An enveloped protobuf body as the dict its JSON form would decode to."""
    api_version, kind, raw = decode_unknown(body)
    message = tables().for_kind(api_version, kind)
    if message is None:
        raise ProtobufError(f"{api_version} {kind} has no protobuf form")
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind} if kind else {}
    obj.update(decode_message(message, raw))
    if kind.endswith("List") and "items" in message.by_json:
        # An empty list has no items on the wire; its JSON form says "items": [].
        obj.setdefault("items", [])
    return obj


def decode_watch_events(stream: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The (type, object) of each frame of a `stream=watch` body (for tests and tools)."""
    events = []
    position = 0
    while position + 4 <= len(stream):
        (size,) = struct.unpack(">I", stream[position : position + 4])
        frame = stream[position + 4 : position + 4 + size]
        if len(frame) < size:
            break
        position += 4 + size
        event = decode_message(tables().message(f"{_META}.WatchEvent"), frame)
        events.append((event["type"], event["object"]))
    return events
