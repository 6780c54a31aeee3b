"""pte-cli: the ``pte`` command, the plugin registry and dataset helpers."""

__version__ = "0.1.0"
