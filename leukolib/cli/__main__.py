"""``python -m leukolib.cli``."""

from leukolib.cli import main

raise SystemExit(main())
