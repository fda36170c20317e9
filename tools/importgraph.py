"""The import graph of dicomsniff and dissectors, for a review: edges between packages (or
modules), import cycles, and modules importing a package's private names.

    python3 tools/importgraph.py [--modules] [ROOT]

ROOT (default: the repository) is put first on sys.path, so an old checkout can be compared.
Counts every import, lazy ones inside functions and TYPE_CHECKING ones included (grimp).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict


def package_of(module: str, depth: int) -> str:
    return ".".join(module.split(".")[:depth])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", default=None)
    ap.add_argument("--modules", action="store_true", help="module edges, not package edges")
    args = ap.parse_args()
    if args.root:
        sys.path.insert(0, args.root)
    import grimp

    g = grimp.build_graph("dicomsniff", "dissectors", cache_dir=None)
    mods = sorted(g.modules)
    edges: dict[str, set[str]] = defaultdict(set)
    for m in mods:
        for dep in g.find_modules_directly_imported_by(m):
            a, b = (m, dep) if args.modules else (package_of(m, 2), package_of(dep, 2))
            if a != b:
                edges[a].add(b)
    print(f"{len(mods)} modules")
    for a in sorted(edges):
        print(f"{a} -> {', '.join(sorted(edges[a]))}")
    # cycles: strongly connected components of the module graph with more than one module
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    sccs: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.find_modules_directly_imported_by(v):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for m in mods:
        if m not in index:
            strong(m)
    print(f"{len(sccs)} import cycles (strongly connected sets of modules):")
    for comp in sccs:
        print("  " + " <-> ".join(comp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
