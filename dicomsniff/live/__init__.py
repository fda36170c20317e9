"""Live capture: :class:`~dicomsniff.live.run.LiveRun` drives a capture helper (or a replayed
file), the ``-w`` files and the analyzer; the CLI and the TUI only show what it sees."""
