"""The frozen binary's entry point: the same ``main`` the ``ponder`` console script runs."""

import sys

from ponder.cli import main

if __name__ == "__main__":
    sys.exit(main())
