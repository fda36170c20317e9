"""Objects and data sets that crossed the wire: export them as files, show them as trees.

``export-objects`` streams every C-STORE data set into a DICOM Part 10 file as its bytes arrive
(never re-encoded, never held whole); ``show`` decodes one transaction's command sets and data
sets with pydicom, and checks C-FIND responses against their query. Nothing here runs unless
one of those commands is asked for: plain analysis never touches data set bytes.
"""
