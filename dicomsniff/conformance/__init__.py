"""Conformance from the wire: what each AE title really does, gap analysis, what changed.

A conformance statement (PS3.2) says what a product can do; a capture says what this
installation does. :mod:`.facts` folds finished associations (the engine's public
``on_association`` hook) into facts per AE title and per SCU -> SCP pair, with bounded memory
(counters keyed by AE, SOP class and transfer syntax, never a list per association).
:mod:`.requirements` checks a requirements file against those facts (gap analysis),
:mod:`.diff` compares two sets of facts, :mod:`.views` turns facts into tables and
:mod:`.render` writes them (terminal, Markdown, CSV, xlsx, JSON Lines).
"""
