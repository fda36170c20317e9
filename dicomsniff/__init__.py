"""dicomsniff: passive DICOM network protocol analyzer."""
__version__ = "0.1.0"
