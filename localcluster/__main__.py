"""``python -m localcluster``: see :mod:`localcluster.cli`."""

from localcluster.cli import main

raise SystemExit(main())
