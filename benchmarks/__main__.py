"""``python -m benchmarks``: mqkit beside the raw clients, kombu and faststream
(see benchmarks/sidebyside.py for what is measured).

``python -m benchmarks --ceiling [options]`` runs instead each broker's own load tool
(benchmarks/ceiling.py: the ceiling the Python clients are measured against).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if "--ceiling" in sys.argv[1:]:
    import ceiling

    ceiling.main([a for a in sys.argv[1:] if a != "--ceiling"])
else:
    from sidebyside import main

    main()
