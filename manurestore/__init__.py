"""manurestore: restore degraded scans of Sanskrit manuscripts."""

__version__ = "0.1.0"
