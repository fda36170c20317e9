"""Independent oracles for testing dicomsniff (Wireshark's DICOM dissector via tshark)."""
