"""Projections: topics folded into Postgres tables (pure folds + a thin confluent-kafka runner).

- `projections.folds`: the pure folds (`Projection.fold`, `fold_batch`), no I/O, no clock;
- `projections.runner`: `run_projections`, `ProjectionRunner`: consume, decode, fold, write;
- `projections.writer`: one batch and its offsets in one transaction, with a forward-only guard;
- `projections.sql`: the statements the writer runs (the conflict rules, the guard);
- `projections.lag`: stored offsets, topic end offsets and `projection_lag`;
- `projections.replay`: `replay_all` (rebuild from offset 0) and `table_checksums`;
- `projections.queries`: the read model the CLI and the demo ask (configs, follows, why, ledger).

Run live: `run_projections(settings, stop_event)`; the demo uses `until_caught_up=True`.
"""

from projections.folds import ALL_PROJECTIONS, FoldResult, Projection, RecordTable, SourceMessage, fold_batch
from projections.lag import projection_lag, topic_end_offsets
from projections.replay import TableChecksum, replay_all, table_checksums, truncate_projections
from projections.runner import BatchResult, ProjectionRunner, ProjectionStats, run_projections

__all__ = [
    "ALL_PROJECTIONS",
    "BatchResult",
    "FoldResult",
    "Projection",
    "ProjectionRunner",
    "ProjectionStats",
    "RecordTable",
    "SourceMessage",
    "TableChecksum",
    "fold_batch",
    "projection_lag",
    "replay_all",
    "run_projections",
    "table_checksums",
    "topic_end_offsets",
    "truncate_projections",
]
