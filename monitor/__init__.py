"""monitor: watches news feeds for new government internet-control measures."""

__version__ = "0.1.0"
