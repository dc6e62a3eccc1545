"""The ``biolake`` command line (click), a thin layer over the public Python API.

May use only ``import biolake as ln`` and ``biolake.errors``: what a command can do, a script
can do too. Run it as ``biolake ...`` or ``python -m biolake.cli ...``.
"""

from biolake.cli.commands import cli, main

__all__ = ["cli", "main"]
