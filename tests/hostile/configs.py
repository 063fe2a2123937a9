"""Hostile inputs from the command line, ``--set`` and model or protocol files."""
from case import Hostile

CASES = [
    Hostile("override", "`--set rul.target=bp` (a misspelt table)", ["run", "--set", "rul.target=bp"],
            "unknown table 'rul'"),
]
