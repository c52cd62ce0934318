"""Entry point of ``python -m tools.tempest``."""

import sys

from tools.tempest.cli import main

sys.exit(main())
