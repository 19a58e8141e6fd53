"""``python -m benchmarks``: mqkit beside the raw clients, kombu and faststream
(see benchmarks/sidebyside.py for what is measured)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sidebyside import main

main()
