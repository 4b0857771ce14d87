"""Kubernetes' protobuf wire format (`application/vnd.kubernetes.protobuf`) for kubesim."""

from akros_kubesim.protobuf.codec import (
    MAGIC,
    MEDIA_TYPE,
    Message,
    ProtobufError,
    decode,
    decode_watch_events,
    encode,
    encode_message,
    encode_watch_event,
    tables,
)

__all__ = [
    "MAGIC",
    "MEDIA_TYPE",
    "Message",
    "ProtobufError",
    "decode",
    "decode_watch_events",
    "encode",
    "encode_message",
    "encode_watch_event",
    "tables",
]
