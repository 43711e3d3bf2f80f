import sys

from kubectl_bandwidth.cli import main

sys.exit(main())
