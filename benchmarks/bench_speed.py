"""Speed of the Brian2 engine against the reference engine: ``bioprop bench`` as a script.

    python benchmarks/bench_speed.py [--batches 30] [--repeats 5] [--dtype float32]

See :mod:`bioprop.bench` for what is measured; every option of ``bioprop bench`` works here.
"""
import sys

from bioprop.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
