"""The package version, in a module that imports nothing (read by releases and results)."""
__version__ = "0.1.0"
