"""Benchmark of dicomsniff against tshark on captures of real DICOM peers (see README.md)."""
