"""Textual widgets of the TUI: a virtual table, the ladder, the detail pane, the filter bar."""
