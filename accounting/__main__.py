"""``python -m accounting``: the same as the ``vaclab-accounting`` console script."""

import sys

from accounting.cli import main

sys.exit(main())
