"""``python -m eval.compare``."""

import sys

from eval.compare.cli import main

if __name__ == "__main__":  # a spawned worker process imports this module too (eval.parallel)
    sys.exit(main())
