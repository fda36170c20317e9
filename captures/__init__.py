"""Recorder for the sample DICOM captures: real peers in two network namespaces, tcpdump between.

Import :mod:`captures.record` for the API (``Recorder``, ``record_scenario``) and the CLI.
"""
