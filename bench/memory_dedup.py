"""Peak RSS of exact dedup (hash-partitioned across the corpus) at 1x and 10x; see bench/memory.py.

    python -m bench.memory_dedup [--quick]
"""

import sys

from bench.memory import main

if __name__ == "__main__":
    sys.argv.insert(1, "--recipe=dedup")
    main()
