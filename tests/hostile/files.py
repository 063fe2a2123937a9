"""Hostile inputs from files: data sets, run files, checkpoints, output paths; and signals."""
from case import Hostile

CASES = [
    Hostile("signal", "Ctrl-C (SIGINT) during training", None, "",
            tested_in="tests/test_interrupt.py"),
]
