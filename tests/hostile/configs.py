"""Hostile inputs from the command line, ``--set`` and model or protocol files."""
from case import Hostile

CASES = [
    Hostile("override", "`--set rul.target=bp` (a misspelt table)", ["run", "--set", "rul.target=bp"],
            "unknown table 'rul'"),
    # names (H3)
    Hostile("command line", "`bioprop run lfi` (a misspelt shipped model)", ["run", "lfi"],
            "no file or shipped model 'lfi'. Shipped: "),
    Hostile("command line", "`bioprop run lif spikng` (a misspelt shipped protocol)",
            ["run", "lif", "spikng"], "no file or shipped protocol 'spikng'"),
    Hostile("command line", "`bioprop run models/lif.toml` outside the repository (a path, not "
            "a name)", ["run", "models/lif.toml"], "no file or shipped model 'models/lif.toml'"),
    Hostile("command line", "`bioprop sweep lfi` (a misspelt shipped model)", ["sweep", "lfi"],
            "no file or shipped model 'lfi'"),
    # each writes m.toml in the test's folder, then runs it (the file's mistake comes first)
    Hostile("model or protocol file", "`protocol = \"spikng\"` in a model (an unknown usual "
            "protocol)", lambda d: [(d / "m.toml").write_text('protocol = "spikng"\n'),
                                    "run", "m.toml"][1:],
            "m.toml: protocol: expected the name of a shipped protocol"),
    Hostile("model or protocol file", "`protocol = 2` in a model (not a name)",
            lambda d: [(d / "m.toml").write_text("protocol = 2\n"), "run", "m.toml"][1:],
            "m.toml: protocol: expected the name of a shipped protocol"),
    Hostile("model or protocol file", "`description` of two lines",
            lambda d: [(d / "m.toml").write_text('description = """a\nb"""\n'),
                       "run", "m.toml"][1:], "m.toml: description: expected one line of text"),
]
