"""``python -m mqkit.cli``."""

import sys

from . import main

sys.exit(main())
