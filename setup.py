"""The optional compiled walkers of bulk runs (dissectors/_runs.c) and of small-message runs
(dissectors/_small.c), and windows onto a capture file (dicomsniff/sources/_mapped.c):
docs/performance.md. Both walkers include dissectors/_records.h (what they share: the records'
layout and clock); as a dependency of each it is in the sdist and rebuilds both when it changes.

``optional=True``: on a machine without a C compiler or Python headers the build of an
extension fails quietly and the package installs without it; the engine then does the same
work in Python (dicomsniff/analysis/accel.py) and the reader reads the file instead of mapping
it (dicomsniff/sources/capture.py). Everything else is in pyproject.toml.
"""

from setuptools import Extension, setup

RECORDS = ["dissectors/_records.h"]

setup(ext_modules=[
    Extension("dissectors._runs", ["dissectors/_runs.c"], depends=RECORDS, optional=True),
    Extension("dissectors._small", ["dissectors/_small.c"], depends=RECORDS, optional=True),
    Extension("dicomsniff.sources._mapped", ["dicomsniff/sources/_mapped.c"], optional=True),
])
