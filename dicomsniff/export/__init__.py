"""Exports built on the model: UML sequence diagrams of DICOM associations (``diagram``).

``sequence`` turns associations into a format-neutral diagram (lifelines, messages, notes);
``plantuml``, ``mermaid`` and ``svg`` write it. Wire strings stay data in every format: each
writer escapes them for its own syntax.
"""
