"""``--anonymize``: the PS3.15 Basic Application Level Confidentiality Profile, applied by
dicom-anonymizer (KitwareMedical), whose rules are the standard's Table E.1-1.

Three things are added around it, each for a reason:

* the profile is applied inside every sequence item as well as at the top level (the library
  only walks the top level, and a worklist item or an MPPS carries names and IDs in items);
* an attribute that is present but empty is left empty: no PHI is in it, and a C-FIND return
  key must stay a return key (a made-up UID in its place would change the query);
* one UID map per run (the library keeps it in a module-level dict, cleared here), so the same
  original UID becomes the same new UID in every file and message of that run;
* for the reference sequences of action X/Z/U* the instance UIDs inside are replaced (the U*
  reading), where the library would empty them: an MPPS keeps pointing at the images it made,
  under their new UIDs. UIDs of the standard itself (1.2.840.10008...) are never replaced.

Pixel data is not inspected: burned-in annotations are not removed.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import Any, BinaryIO

RULES = "dicomfields_2026c"  # the newest Table E.1-1 the library ships
STANDARD_ROOT = "1.2.840.10008."  # UIDs the standard defines identify nothing


class AnonymizeUnavailable(RuntimeError):
    """dicom-anonymizer is not installed."""


class Deidentifier:
    """De-identifies pydicom data sets (and the UIDs of command sets) for one run."""

    def __init__(self) -> None:
        try:
            from dicomanonymizer import simpledicomanonymizer as lib
        except ImportError as exc:
            raise AnonymizeUnavailable("--anonymize needs dicom-anonymizer "
                                       "(pip install dicom-anonymizer)") from exc
        self._lib = lib
        lib.dictionary.clear()  # the library's old-UID -> new-UID map: one per run
        try:
            actions = lib.initialize_actions(RULES)
        except ValueError:
            actions = lib.initialize_actions()
        uids = (lib.delete_or_empty_or_replace_UID, lib.replace_UID)
        self._rules = {tag: _unless_empty(self._replace_uids if action in uids else action)
                       for tag, action in actions.items()}

    def uid(self, value: str) -> str:
        """The replacement of an instance UID, as used in every data set of this run."""
        if not value or value.startswith(STANDARD_ROOT):
            return value
        return self._lib.get_UID(value)

    def _replace_uids(self, dataset: Any, tag: Any) -> None:
        """U, and X/Z/U* read as U*: every instance UID in the element (or its items)."""
        elem = dataset.get(tag)
        if elem is None:
            return
        if elem.VR == "SQ":
            for item in elem.value:
                for inner in item.iterall():
                    self._replace_uid_element(inner)
        elif elem.VR == "UI":
            self._replace_uid_element(elem)
        else:
            self._lib.empty(dataset, tag)

    def _replace_uid_element(self, elem: Any) -> None:
        if elem.VR != "UI" or not elem.value or elem.keyword.endswith("ClassUID"):
            return
        if isinstance(elem.value, str):
            elem.value = self.uid(elem.value)
        else:
            elem.value = [self.uid(v) for v in elem.value]

    def dataset(self, ds: Any) -> None:
        """Apply the profile in place, to ``ds`` and every item of its sequences."""
        for item in _items(ds):
            self._lib.anonymize_dataset(item, base_rules_gen=lambda: dict(self._rules),
                                        delete_private_tags=True)
        self._lib.anonymize_dataset(ds, base_rules_gen=lambda: dict(self._rules),
                                    delete_private_tags=True)

    def file(self, path: str) -> Any:
        """Read a Part 10 file and return it de-identified; ValueError if it cannot be read
        whole (a partial data set is then not written at all: nothing unreviewed leaks)."""
        from pydicom.errors import InvalidDicomError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = _read(path)
                for elem in ds.iterall():  # reads every element: a cut data set fails here
                    _ = elem.value
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError,
                NotImplementedError) as exc:
            raise ValueError(f"cannot be decoded for de-identification ({exc})") from None
        self.dataset(ds)
        sop = ds.get("SOPInstanceUID")
        ds.file_meta.MediaStorageSOPInstanceUID = (
            sop if sop else self.uid(str(ds.file_meta.get("MediaStorageSOPInstanceUID", ""))))
        return ds

    @staticmethod
    def encode(ds: Any) -> bytes:
        """Part 10 file in the data set's own transfer syntax (file meta as read, plus ours);
        ValueError (from pydicom) when the data set cannot be written."""
        from .part10 import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

        ds.file_meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
        ds.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        return buf.getvalue()

    @classmethod
    def write(cls, ds: Any, fh: BinaryIO) -> None:
        fh.write(cls.encode(ds))


def _read(path: str) -> Any:
    """pydicom's reading of a Part 10 file, except that a deflated data set is inflated
    within the ``--max-inflate`` cap (:mod:`dicomsniff.inflate`; pydicom would inflate it
    whole): past the cap, InflateError (a ValueError) and the object is not written."""
    import pydicom
    from pydicom.dataset import FileDataset
    from pydicom.filereader import read_dataset, read_file_meta_info, read_preamble

    from .. import inflate

    meta = read_file_meta_info(path)
    if not inflate.is_deflated(str(meta.get("TransferSyntaxUID", ""))):
        return pydicom.dcmread(path)
    with open(path, "rb") as fh:
        preamble = read_preamble(fh, False)
        head = fh.read(12)  # (0002,0000) UL: where the data set starts (PS3.10 7.1)
        if len(head) < 12 or head[:6] != b"\x02\x00\x00\x00UL":
            raise ValueError("no File Meta Information Group Length")
        fh.seek(int.from_bytes(head[8:12], "little"), io.SEEK_CUR)
        plain = inflate.inflate(fh, allow_truncated=False)
    ds = read_dataset(io.BytesIO(plain), False, True)
    out = FileDataset(path, ds, preamble, meta, False, True)
    out.set_original_encoding(False, True, ds._character_set)
    return out


def _unless_empty(action: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    def apply(dataset: Any, tag: Any) -> None:
        elem = dataset.get(tag) if hasattr(dataset, "get") else None
        if elem is not None and elem.VR != "SQ" and elem.value in ("", None, b""):
            return
        action(dataset, tag)

    return apply


def _items(ds: Any) -> list[Any]:
    """Every sequence item below ``ds``, deepest first (so parents see cleaned children)."""
    out: list[Any] = []
    for elem in list(ds):
        if elem.VR == "SQ":
            for item in elem.value:
                out.extend(_items(item))
                out.append(item)
    return out
