"""The `monitor` command: a thin click front door over the daemon's objects.

May import everything in monitor; nothing in monitor imports it.
"""

from monitor.cli.main import main

__all__ = ["main"]
