"""Entry point of ``python -m taylor_queue``."""

import sys

from .cli import main

sys.exit(main())
