"""``--db``, ``--parquet``, ``--sensor``: the store options of ``analyze`` (argparse only at
start-up; DuckDB and pyarrow load when a store is asked for)."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..sources.merge import CaptureSet
    from .writer import StoreWriter

__all__ = ["add_store_options", "store_from"]


def add_store_options(parser: Any) -> None:
    g = parser.add_argument_group("store (docs/many-captures.md: tables, queries)")
    g.add_argument("--db", metavar="FILE",
                   help="append associations, transactions and findings to this DuckDB "
                        "database (tables associations, transactions, findings, runs)")
    g.add_argument("--parquet", metavar="DIR",
                   help="append the same to a Parquet dataset in DIR, partitioned by day")
    g.add_argument("--sensor", metavar="NAME",
                   help="name of the sensor that captured this, stored with every row")


def store_from(args: argparse.Namespace, capture: CaptureSet) -> StoreWriter | None:
    """The store writer the options ask for (None without --db/--parquet); raises StoreError."""
    if not getattr(args, "db", None) and not getattr(args, "parquet", None):
        return None
    from .writer import StoreWriter

    paths = capture.paths
    names = [os.path.basename(p) for p in paths]
    label = names[0] if len(names) == 1 else f"{names[0]} (+{len(names) - 1} more)"
    return StoreWriter(db=args.db, parquet=args.parquet, capture=label,
                       files=[os.path.abspath(p) if p != "<stdin>" else p for p in paths],
                       sensor=args.sensor, locate=capture.locate)
