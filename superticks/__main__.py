"""`python -m superticks ...`: the `superticks` command (as the console script runs it)."""

import sys

from superticks.cli import main

sys.exit(main())
