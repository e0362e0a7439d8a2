"""``python -m eval.compare``."""

import sys

from eval.compare.cli import main

sys.exit(main())
