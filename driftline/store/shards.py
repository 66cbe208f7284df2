"""Inserting straight into shards: the rows of a sharded table split by the Distributed tables'
own sharding key, so they land where an insert through the Distributed table would have put them.

`cityHash64(trace_id) % shards`, with equal shard weights, is what `Distributed(..., cityHash64(trace_id))`
computes; clickhouse-cityhash is CityHash 1.0.2, the version ClickHouse's cityHash64 uses (a test
checks both agree on the engine). A shard's replicas then copy its rows among themselves
(`internal_replication`), so each shard's URL may reach any of its replicas.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_cityhash.cityhash import CityHash64

__all__ = ["shard_of", "split_by_shard"]


def shard_of(trace_id: str, shards: int) -> int:
    """The shard (0-based, in the cluster's shard order) that stores this trace."""
    return int(CityHash64(trace_id.encode())) % shards


def split_by_shard(data: pa.Table, shards: int) -> list[tuple[int, pa.Table]]:
    """(shard, rows) for each shard that gets rows, by the table's trace_id column."""
    if shards == 1:
        return [(0, data)]
    index = pa.array([shard_of(t, shards) for t in data.column("trace_id").to_pylist()], pa.int32())
    out: list[tuple[int, pa.Table]] = []
    for shard in range(shards):
        part = data.filter(pc.equal(index, shard))
        if part.num_rows:
            out.append((shard, part))
    return out
