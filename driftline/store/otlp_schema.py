"""OTLP trace export requests as the engine reads them: a flattened, wire-compatible .proto schema.

ClickHouse's `Protobuf` input format parses a protobuf message into columns when given a schema
(`format_schema`, shipped inline with `format_schema_source = 'string'`, so neither the embedded
store nor a server needs a schema file). The schema below is the part of the OTLP protos
(opentelemetry-proto v1: collector/trace/v1/trace_service.proto, trace/v1/trace.proto,
common/v1/common.proto, resource/v1/resource.proto) that normalization reads, in one package,
with the field numbers and wire types of those files, so it parses the bytes any OTLP exporter
sends. Fields it leaves out (trace_state, links, dropped counts, flags, schema_url, scope
attributes) are skipped by the parser, as protobuf allows. tests/test_engine_ingest.py holds each
field number and wire type to the descriptors of the installed opentelemetry-proto package.

AnyValue's `oneof` becomes one Nullable column per variant: the parser leaves NULL the variants
that are not on the wire, which tells an empty string from an absent value as `WhichOneof` does.
An array or kvlist is read one level deep (its items' scalar variants; a nested array or kvlist
inside it stays raw bytes): the engine renders those levels to the attribute text, and a value
nested deeper is reported by the query (`deep_values`) so that its span is not stored with a
text the engine could not produce.

`STRUCTURE` is the matching ClickHouse column structure (names are the proto field names, as
the format requires); one row per export request, with its resource/scope/span lists as arrays.

One field is not OTLP's: `driftline_request` (REQUEST_FIELD, the highest field number protobuf
allows, which no OTLP message uses). store/ingest.py appends it to each body it hands the engine
(`numbered`), so each row knows which request it came from: a message's fields may come in any
order and a field given twice takes its last value, so the request parses as before, plus this
number (0 on a body without it).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MESSAGE", "PROTO", "REQUEST_FIELD", "STRUCTURE"]

MESSAGE: Final = "ExportTraceServiceRequest"
REQUEST_FIELD: Final = 536870911  # 2**29 - 1

# Field numbers and types: opentelemetry-proto v1 (see the module docstring); AnyValue variants in
# the order of common.proto. `int32 kind` / `int32 code` read the enums' varints (same wire type).
PROTO: Final = """syntax = "proto3";
package driftline.otlp;

message ExportTraceServiceRequest {
  repeated ResourceSpans resource_spans = 1;
  uint32 driftline_request = 536870911;
}
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message Resource { repeated KeyValue attributes = 1; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message InstrumentationScope { string name = 1; string version = 2; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  bytes parent_span_id = 4;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  repeated Event events = 11;
  Status status = 15;
}
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  string string_value = 1;
  bool bool_value = 2;
  int64 int_value = 3;
  double double_value = 4;
  ArrayValue array_value = 5;
  KeyValueList kvlist_value = 6;
  bytes bytes_value = 7;
}
message ArrayValue { repeated InnerValue values = 1; }
message KeyValueList { repeated InnerKeyValue values = 1; }
message InnerKeyValue { string key = 1; InnerValue value = 2; }
message InnerValue {
  string string_value = 1;
  bool bool_value = 2;
  int64 int_value = 3;
  double double_value = 4;
  bytes array_value = 5;
  bytes kvlist_value = 6;
  bytes bytes_value = 7;
}
"""

_SCALARS: Final = (
    "string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64), "
    "double_value Nullable(Float64)"
)
_INNER: Final = (
    f"Tuple({_SCALARS}, array_value Nullable(String), kvlist_value Nullable(String), bytes_value Nullable(String))"
)
_VALUE: Final = (
    f"Tuple({_SCALARS}, array_value Tuple(values Array({_INNER})), "
    f"kvlist_value Tuple(values Array(Tuple(key String, value {_INNER}))), bytes_value Nullable(String))"
)
_ATTRS: Final = f"Array(Tuple(key String, value {_VALUE}))"
_SPAN: Final = (
    "Tuple(trace_id String, span_id String, parent_span_id String, name String, kind Int32, "
    "start_time_unix_nano UInt64, end_time_unix_nano UInt64, "
    f"attributes {_ATTRS}, "
    f"events Array(Tuple(time_unix_nano UInt64, name String, attributes {_ATTRS})), "
    "status Tuple(message String, code Int32))"
)
STRUCTURE: Final = (
    f"resource_spans Array(Tuple(resource Tuple(attributes {_ATTRS}), "
    f"scope_spans Array(Tuple(scope Tuple(name String, version String), spans Array({_SPAN}))))), "
    "driftline_request UInt32"
)
