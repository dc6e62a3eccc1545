"""``python -m biolake.cli``: the same as the ``biolake`` command."""

from biolake.cli.commands import main

if __name__ == "__main__":
    main()
