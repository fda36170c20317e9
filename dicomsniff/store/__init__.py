"""A store to query: the ``--json`` records in DuckDB tables or a Parquet dataset."""
