"""Protocol layers of dicomsniff: pure, sans-IO, no UI imports."""
