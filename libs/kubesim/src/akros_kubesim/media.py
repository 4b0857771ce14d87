"""Content negotiation between JSON and protobuf, as the API server negotiates it."""

from dataclasses import dataclass

from akros_kubesim import errors

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"


@dataclass(frozen=True)
class MediaRange:
    type: str  # "application/json", "*/*", ...
    params: dict[str, str]
    quality: float


def parse_accept(header: str) -> list[MediaRange]:
    """An Accept header's media ranges, most preferred first (RFC 9110: by q-value, then in
    the order given; q=0 means not acceptable and is left out)."""
    ranges = []
    for clause in header.split(","):
        parts = [p.strip() for p in clause.split(";")]
        if not parts[0]:
            continue
        params = {}
        for part in parts[1:]:
            name, _, value = part.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(params.pop("q", "1") or "1")
        except ValueError:
            quality = 1.0
        if quality > 0:
            ranges.append(MediaRange(parts[0].lower(), params, quality))
    return sorted(ranges, key=lambda r: -r.quality)


def is_protobuf(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == PROTOBUF


def output_media_type(accept: str, protobuf_available: bool, watch: bool = False) -> str:
    """JSON or PROTOBUF, whichever the client prefers among those the object can be sent as.

    A range carrying conversion parameters (`as=Table`, `g=`, `v=`) asks for another kind
    and does not match a plain object; `stream=watch` matches watch responses only. As the
    API server does, a client that accepts nothing the object can be sent as gets 406; a
    request without Accept, or whose ranges kubesim does not know at all (YAML, CBOR), gets
    JSON, which kubesim always serves.
    """
    if not accept.strip():
        return JSON
    known = False
    for media in parse_accept(accept):
        params = dict(media.params)
        stream = params.pop("stream", "")
        if params or (stream and (stream != "watch" or not watch)):
            continue
        if media.type in (JSON, "application/*", "*/*"):
            return JSON
        if media.type == PROTOBUF:
            known = True
            if protobuf_available:
                return PROTOBUF
    if known:
        raise errors.ApiError(
            406, f"only the following media types are accepted: {JSON}", reason="NotAcceptable"
        )
    return JSON
