"""``python -m contract_tests.native_brokers`` is ``scripts/brokers``."""

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
