"""supervisor: run many AI coding agents in parallel on one repository."""

__version__ = "0.1.0"
