"""Record one DICOM exchange with two sensors: tcpdump on both ends of the veth pair.

A hospital captures at the modality's switch and at the PACS; each sensor sees the same
segments at slightly different times. This records that: storescu (dcmtk) in the SCU namespace
stores a few synthetic CT images to storescp (dcmtk) in the SCP namespace, after a C-ECHO, while
one tcpdump runs on the SCU's veth end (``sensor-scu.pcap``) and another on the SCP's
(``sensor-scp.pcap``). Root needed::

    sudo python3 captures/sensors.py                    # -> captures/sensors/
    sudo python3 captures/sensors.py --out /tmp/s --images 8 --prefix many2s

Tests (tests/test_sources_merge.py) read the committed files; they also record afresh once when
root and dcmtk are there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from captures import synth  # noqa: E402
from captures.netns import SCP, SCU, Tcpdump, Testbed  # noqa: E402
from captures.scenarios import BIN, DICOM_PORT, expect_count, storescp  # noqa: E402
from captures.session import Session  # noqa: E402

OUT = Path(__file__).resolve().parent / "sensors"
FILES = {SCU: "sensor-scu.pcap", SCP: "sensor-scp.pcap"}


def record(out: Path, *, images: int = 6, rows: int = 128, cols: int = 128,
           prefix: str = "many2s") -> dict:
    """Record the exchange with both sensors; returns what the peers did (the ground truth)."""
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        with Testbed(prefix=prefix, scu_if="mny0", scp_if="mny1") as bed:
            s = Session(bed, work, out / FILES[SCU])
            try:
                storescp(s, "storescp", DICOM_PORT)
                imgs = synth.ct_series(work / "src", key="sensors", count=images, rows=rows,
                                       cols=cols, patient=2)
                dumps = {side: Tcpdump(bed, out / (FILES[side] + ".part"), side=side)
                         for side in (SCU, SCP)}
                for d in dumps.values():
                    d.start()
                try:
                    s.client("echoscu", [BIN / "echoscu", "-v", "-aet", "SENSORECHO", "-aec",
                                         "STORESCP", s.scp_ip, DICOM_PORT])
                    log = s.client("storescu", [BIN / "storescu", "-v", "-aet", "SENSORSTORE",
                                                "-aec", "STORESCP", s.scp_ip, DICOM_PORT,
                                                *[i.path for i in imgs]])
                    expect_count(log, r"Received Store Response \(Success\)", images,
                                 "storescu")
                finally:
                    stats = {side: d.stop() for side, d in dumps.items()}
            finally:
                s.stop_servers()
        for side, st in stats.items():
            if st.get("dropped_by_kernel", 0):
                raise RuntimeError(f"tcpdump on the {side} side dropped packets")
            (out / (FILES[side] + ".part")).replace(out / FILES[side])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"associations": [
        {"calling_ae": "SENSORECHO", "called_ae": "STORESCP", "operations": ["C-ECHO"]},
        {"calling_ae": "SENSORSTORE", "called_ae": "STORESCP",
         "operations": ["C-STORE"] * images},
    ], "files": list(FILES.values()), "tcpdump": stats}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--prefix", default="many2s")
    args = ap.parse_args(argv)
    truth = record(args.out, images=args.images, prefix=args.prefix)
    (args.out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(json.dumps(truth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
