"""``dicomsniff tui``: browse a capture's associations, ladders, messages and findings.

The only package that imports textual. Everything below ``app`` is plain Python (feed, store,
filter language, ladder layout, frame re-reading, data set decoding, exports) and is tested
without a terminal; ``app``, ``screens`` and ``widgets`` are the textual front end.
"""
