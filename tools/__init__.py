"""Developer scripts (not installed): the import graph, the TUI screenshots."""
