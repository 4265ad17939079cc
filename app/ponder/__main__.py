"""`python -m ponder` is the same as the `ponder` console script."""

from ponder.cli import main

raise SystemExit(main())
