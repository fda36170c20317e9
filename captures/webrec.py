"""What the HTTP recorders share (dicomweb_record.py, dicomweb_more_record.py, ups_record.py):
the command line, a testbed with a session in a scratch directory that is torn down whatever
happens, curl's argv for several requests on one connection, and the manifest with its
summary lines.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .netns import Testbed
from .session import Session


def arguments(argv: list[str] | None, doc: str, out: Path, prefix: str,
              venv: bool = False) -> argparse.Namespace:
    """``--out DIR --prefix NAME`` (and ``--venv DIR``, the virtual environment of the
    servers that stay out of the system Python)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", type=Path, default=out)
    ap.add_argument("--prefix", default=prefix)
    if venv:
        ap.add_argument("--venv", type=Path, default=Path("/tmp/dw-venv"))
    return ap.parse_args(argv)


@contextmanager
def lab(out: Path, prefix: str) -> Iterator[tuple[Testbed, Session, Path]]:
    """The namespaces (``<prefix>-scu``/``-scp``), a session and its scratch directory; the
    servers stopped, the namespaces and the directory removed on the way out."""
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        with Testbed(prefix=prefix, scu_if=f"{prefix[:8]}0", scp_if=f"{prefix[:8]}1") as bed:
            s = Session(bed, work, out / "unused.pcap")
            try:
                yield bed, s, work
            finally:
                s.stop_servers()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def curl_argv(groups: list[list[str]], fmt: str = "%{json}\\n",
              http: str = "--http1.1") -> list[str]:
    """One curl run, several requests (``--next`` between option groups, the last item of each
    its URL) on one keep-alive connection, each writing ``fmt`` (``-w``) as its truth."""
    argv: list[str] = ["curl"]
    for i, g in enumerate(groups):
        if i:
            argv.append("--next")
        argv += ["-sS", http, "-o", "/dev/null", "-w", fmt, *g]
    return argv


def curl_exchanges(s: Session, name: str, groups: list[list[str]], http: str = "--http1.1",
                   ok: tuple[int, ...] = (0,), http_version: bool = False
                   ) -> list[dict[str, Any]]:
    """:func:`curl_argv` run as client ``name``: method, URL, status, content type and size
    of each exchange (and the HTTP version curl used)."""
    out = s.client(name, curl_argv(groups, http=http), ok=ok)
    done = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [{"method": d["method"], "url": d["url_effective"], "status": d["response_code"],
             "content_type": d["content_type"], "bytes": d["size_download"],
             **({"http_version": d.get("http_version")} if http_version else {})}
            for d in done]


def version(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()


def pip_version(venv: Path, package: str) -> str:
    """The version of ``package`` installed in the virtual environment ``venv``."""
    return version([str(venv / "bin" / "pip"), "show", package]
                   ).split("Version: ")[-1].splitlines()[0]


def write_manifest(path: Path, manifest: dict[str, Any]) -> int:
    """The manifest as the tests read it, and one line per capture on stderr. Returns 0."""
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    for e in manifest["captures"]:
        print(f"{e['file']}: {e['frames']} frames, {e['size_bytes']} bytes, "
              f"{len(e['exchanges'])} exchanges", file=sys.stderr)
    return 0
