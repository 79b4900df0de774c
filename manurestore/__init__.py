"""manurestore: restore degraded scans of Sanskrit manuscripts."""

__version__ = "0.2.0"
