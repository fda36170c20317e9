"""DICOMweb (PS3.18) read from HTTP: services, status meanings, bodies, findings."""
