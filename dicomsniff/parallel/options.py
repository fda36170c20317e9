"""``--dask ADDRESS`` and ``--workers N`` for ``analyze`` (argparse only at start-up)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_cluster_options", "cluster_config"]


def add_cluster_options(parser: Any) -> None:
    g = parser.add_argument_group("cluster (docs/many-captures.md)")
    g.add_argument("--dask", metavar="ADDRESS",
                   help="analyse shards of the connections on a Dask distributed cluster "
                        "(tcp://HOST:8786, its workers reading the same files under the same "
                        "paths), or 'local' for a LocalCluster on this machine")
    g.add_argument("--workers", type=int, default=2, metavar="N",
                   help="worker processes of --dask local (default 2)")


def cluster_config(args: argparse.Namespace, limits: Any, rules: Any) -> dict[str, Any]:
    """What a shard worker needs to build the same Analyzer as this process."""
    cfg: dict[str, Any] = {"ports": list(getattr(args, "port", [])), "limits": limits,
                           "rules": rules}
    if getattr(args, "dedup_window", None) is not None:
        cfg["dedup_window"] = args.dedup_window
    return cfg
