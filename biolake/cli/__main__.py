"""``python -m biolake.cli``: the same as the ``biolake`` command."""

from biolake.cli.commands import main

main()
