"""``python -m accounting``: the same as the ``vaclab-accounting`` console script."""

from accounting.cli import run

run()
