"""Ingest of the portal database, CRM exports and web/auth logs into the personal zone.

`ingest_source` is what a DAG task calls: it loads every batch it can, records counts in ops,
and raises `IngestFailed` afterwards if any batch was refused, so valid data is kept and the run
still fails loudly.
"""

from ccg_pipeline.ingest.stage import ingest_source, lane_files, lane_names

__all__ = ["ingest_source", "lane_files", "lane_names"]
