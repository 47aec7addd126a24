"""Stages: the Dask-facing units of work (ingest+score, select, write), one task per shard."""
