"""Decode stage: OTLP request bodies -> ExportTraceServiceRequest, with opentelemetry-proto only.

OTLP/JSON differs from protobuf's canonical JSON mapping in one way that matters: trace and span
ids are hex, not base64 (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding). Enums
may be integers and unknown fields must be ignored, which `json_format.ParseDict` handles.

Nesting is bounded by the decoders, never by our own recursion: protobuf (upb) refuses messages
nested deeper than 100 levels, `json_format` likewise, and the JSON parser raises RecursionError
past Python's recursion limit. A body past any of these cannot be decoded at all, so it is bad
data for the whole request (400, never retried: https://opentelemetry.io/docs/specs/otlp/#failures-1);
there are no spans yet whose neighbours could be kept. Whatever decodes is at most ~48 AnyValue
levels deep, which the normalizer reads without coming near the recursion limit.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from driftline.collector.errors import BadRequest, PayloadTooLarge

__all__ = ["decode_json", "decode_protobuf", "decompress"]

# upb's default limit on message nesting (upb_DecodeOptions_MaxDepth), named in error messages.
_MAX_PROTOBUF_DEPTH = 100


def decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """Undo Content-Encoding, refusing anything that inflates past `max_bytes` (zip bombs)."""
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"request body of {len(body)} bytes exceeds the limit of {max_bytes}")
        return body
    if enc in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(body, max_bytes + 1)
        except zlib.error as e:
            raise BadRequest(f"body is not valid {enc}: {e}") from None
        if len(out) > max_bytes or d.unconsumed_tail:
            raise PayloadTooLarge(f"decompressed body exceeds the limit of {max_bytes} bytes")
        if not d.eof:
            raise BadRequest(f"body is truncated {enc}")
        return out
    raise BadRequest(f"unsupported Content-Encoding {encoding!r} (use gzip or none)")


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except (ProtobufDecodeError, RuntimeError, ValueError) as e:
        # upb says only "Error parsing message" for most faults, so the one limit we know is named.
        raise BadRequest(
            f"body is not a valid OTLP ExportTraceServiceRequest protobuf (malformed, or messages nested "
            f"more than {_MAX_PROTOBUF_DEPTH} levels deep): {e}"
        ) from None
    return req


def _hex_to_b64(value: Any) -> str:
    """Hex id -> base64 for json_format. A malformed id becomes empty, so that one span is
    rejected by the normalizer as missing its id while its neighbours are kept."""
    if not isinstance(value, str):
        return ""
    try:
        return base64.b64encode(binascii.unhexlify(value)).decode()
    except (binascii.Error, ValueError):
        return ""


def _items(obj: Any, *keys: str) -> list[Any]:
    """The list under the first key present; anything else (a bad shape) is left to the parser."""
    for k in keys:
        v = obj.get(k) if isinstance(obj, dict) else None
        if v is not None:
            return v if isinstance(v, list) else []
    return []


def _fix_ids(doc: Any) -> None:
    if not isinstance(doc, dict):
        raise BadRequest("OTLP/JSON body must be an object")
    for rs in _items(doc, "resourceSpans", "resource_spans"):
        for ss in _items(rs, "scopeSpans", "scope_spans"):
            for span in _items(ss, "spans"):
                if not isinstance(span, dict):
                    continue
                for key in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
                    if key in span:
                        span[key] = _hex_to_b64(span[key])
                for link in _items(span, "links"):
                    if isinstance(link, dict):
                        for key in ("traceId", "trace_id", "spanId", "span_id"):
                            if key in link:
                                link[key] = _hex_to_b64(link[key])


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequest(f"body is not valid JSON: {e}") from None
    except RecursionError:
        raise BadRequest("body is JSON nested deeper than the parser allows") from None
    _fix_ids(doc)
    req = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(doc, req, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as e:
        raise BadRequest(f"body is not a valid OTLP/JSON ExportTraceServiceRequest: {e}") from None
    return req
