"""Hostile inputs from the command line, ``--set`` (the cases of :mod:`config_overrides`)
and model or protocol files.

A file case writes its files into the case's fresh directory: the shipped default model
or protocol with one edit (:func:`model_edit`, :func:`protocol_edit`), or a text of its own
(:func:`files`), so that each message names ``m.toml`` or ``p.toml`` as the user wrote it.
"""
from pathlib import Path

from case import Hostile
from config_overrides import OVERRIDES

from bioprop.specfiles import default_model_path, default_protocol_path

def files(model=None, protocol=None, *extra):
    """Argv that writes `model` as m.toml and `protocol` as p.toml (text, or bytes), and
    runs them (a missing one: the shipped default)."""
    def argv(here: Path):
        names = []
        for name, content in (("m.toml", model), ("p.toml", protocol)):
            if content is None:
                names.append(str(default_model_path() if name == "m.toml"
                                 else default_protocol_path()))
                continue
            path = here / name
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
            names.append(name)
        return ["run", *names, *extra]
    return argv


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    return text.replace(old, new, 1)


def model_edit(old, new, protocol=None):
    """The shipped default model with its first `old` replaced by `new`, as m.toml."""
    return lambda here: files(_edit(default_model_path(), old, new), protocol)(here)


def protocol_edit(old, new):
    """The shipped default protocol with its first `old` replaced by `new`, as p.toml."""
    return lambda here: files(None, _edit(default_protocol_path(), old, new))(here)


HIDDEN1 = 'name = "hidden1"\nsize = 128'
HIDDEN2 = 'name = "hidden2"\nsize = 128'

CASES = [
    # ------------------------------------------------------------------ command line
    Hostile("command line", "`--set training.epochs 1` (a space for `=`)",
            ["run", "--set", "training.epochs", "1"],
            "--set training.epochs 1: expected KEY=VALUE with no space; did you mean "
            "--set training.epochs=1?"),
    Hostile("command line", "`--set 'training.epochs 1'` (a space for `=`, quoted)",
            ["run", "--set", "training.epochs 1"], "Did you mean training.epochs=1?"),
    Hostile("command line", "a model file that is not there", ["run", "nosuch.toml"],
            "no file or shipped model 'nosuch.toml'"),
    Hostile("command line", "a folder given as the model file", lambda here: (
        (here / "models").mkdir(), ["run", "models"])[1], "models: a folder, not a file"),
    Hostile("command line", "protocol and model swapped (`bioprop run PROTOCOL MODEL`)",
            ["run", str(default_protocol_path()), str(default_model_path())],
            "this looks like a protocol file (its tables: data, engine, phases, record, "
            "training), not a model file"),
    Hostile("command line", "a model file given as the protocol",
            ["run", str(default_model_path()), str(default_model_path())],
            "this looks like a model file"),
    Hostile("command line", "`--resume` together with `--set`",
            ["run", "--resume", "x.h5", "--set", "training.epochs=2"],
            "--resume continues a run with the model and protocol recorded in it"),
    Hostile("command line", "no command (`bioprop`)", [],
            "the following arguments are required: COMMAND"),
    Hostile("command line", "an unknown command (`bioprop train`)", ["train"],
            "invalid choice: 'train'"),
    Hostile("command line", "an option `run` does not have (`--epochs 3`)",
            ["run", "--epochs", "3"], "unrecognized arguments: --epochs"),
    Hostile("command line", "`--set` with nothing after it", ["run", "--set"],
            "argument --set: expected one argument"),
    Hostile("command line", "three files given to `run`",
            ["run", "m.toml", "p.toml", "q.toml"], "unrecognized arguments: q.toml"),
    Hostile("command line", "`sweep --seed-list 1,a`", ["sweep", "--seed-list", "1,a"],
            "expected whole numbers separated by commas, got '1,a'"),
    Hostile("command line", "`sweep --seeds 2 --seed-list 1,2` (both)",
            ["sweep", "--seeds", "2", "--seed-list", "1,2"],
            "argument --seed-list: not allowed with argument --seeds"),
    Hostile("command line", "`sweep --seeds 0`", ["sweep", "--seeds", "0"],
            "argument --seeds: expected a whole number ≥ 1, got '0'"),
    Hostile("command line", "`sweep --workers 0`", ["sweep", "--workers", "0"],
            "argument --workers: expected a whole number ≥ 1, got '0'"),
    Hostile("command line", "`sweep --grid rul.target=tp,bp` (a misspelt table)",
            ["sweep", "--grid", "rul.target=tp,bp"], "--grid rul.target: unknown table 'rul'"),
    Hostile("command line", "`export` without `--nwb`", ["export", "run.h5"],
            "the following arguments are required: --nwb"),
    Hostile("command line", "`export --epoch last` (not a number)",
            ["export", "run.h5", "--nwb", "o.nwb", "--epoch", "last"],
            "argument --epoch: invalid int value: 'last'"),
    Hostile("command line", "`bench --dtype float16`", ["bench", "--dtype", "float16"],
            "argument --dtype: invalid choice: 'float16'"),
    Hostile("command line", "`bench --sizes 784,a,10`", ["bench", "--sizes", "784,a,10"],
            "argument --sizes: expected two or more whole numbers ≥ 1 separated by commas, input "
            "first, got '784,a,10'"),
    Hostile("command line", "`bench --batch-size 0`", ["bench", "--batch-size", "0"],
            "argument --batch-size: expected a whole number ≥ 1, got '0'"),
] + OVERRIDES + [
    # -------------------------------------------------------- model or protocol file
    Hostile("model or protocol file", "a TOML syntax error (a missing `=`)",
            model_edit("size = 128", "size 128"),
            "m.toml: not valid TOML: Expected '=' after a key in a key/value pair (at line 17"),
    Hostile("model or protocol file", "an unclosed string",
            protocol_edit('dataset = "digits"', 'dataset = "digits'),
            "p.toml: not valid TOML: "),
    Hostile("model or protocol file", "a key given twice in a table",
            model_edit("size = 128", "size = 128\nsize = 64"),
            "m.toml: not valid TOML: Cannot overwrite a value (at line 18"),
    Hostile("model or protocol file", "a UTF-16 file", files("[network]\n".encode("utf-16")),
            "m.toml: not a TOML text file: it is UTF-16"),
    Hostile("model or protocol file", "a byte that is not UTF-8",
            files(b'[network]\nname = "\x84"\n'),
            "m.toml: not a TOML text file: byte 18 (0x84) is not UTF-8"),
    Hostile("model or protocol file", "a binary file", files(b"a = 1\n\x00\x01\x02"),
            "m.toml: not a TOML text file: it holds a NUL byte (a binary file?)"),
    Hostile("model or protocol file", "an empty model file", files(""),
            "m.toml: missing required key(s): network, layers"),
    Hostile("model or protocol file", "`[layers]` as a table, not an array of tables",
            files('[network]\ninput_size = 64\n[layers]\nname = "out"\nsize = 10\n'),
            "m.toml: layers: expected an array of tables ([[layers]]), got a table"),
    Hostile("model or protocol file", "no layers (`layers = []`)",
            files('layers = []\n[network]\ninput_size = 64\n'),
            "m.toml: layers: a model needs at least one layer above the input"),
    Hostile("model or protocol file", "a layer without a name", model_edit(
        'name = "hidden2"\n', ""), "m.toml: layers.1: missing required key(s): name"),
    Hostile("model or protocol file", "an unknown key in a layer, named by the layer",
            model_edit(HIDDEN2, HIDDEN2 + "\nsizes = 3"),
            "m.toml: unknown key 'layers.hidden2.sizes'. Expected one of: name, size,"),
    Hostile("model or protocol file", "a size of 0, named by the layer",
            model_edit(HIDDEN2, 'name = "hidden2"\nsize = 0'),
            "m.toml: layers.hidden2.size: must be positive, got 0"),
    Hostile("model or protocol file", "a size as text (`size = \"128\"`)",
            model_edit(HIDDEN1, 'name = "hidden1"\nsize = "128"'),
            "m.toml: layers.hidden1.size: expected int, got str '128'"),
    Hostile("model or protocol file", "a boolean for a size (`size = true`)",
            model_edit(HIDDEN1, 'name = "hidden1"\nsize = true'),
            "m.toml: layers.hidden1.size: expected int, got bool True"),
    Hostile("model or protocol file", "a learning rate as text (`lr = \"1e-3\"`)",
            model_edit("lr = 0.001", 'lr = "1e-3"'),
            "m.toml: optimizer.forward.lr: expected float, got str '1e-3'"),
    Hostile("model or protocol file", "an unknown top-level key",
            model_edit("[network]", "seed = 3\n\n[network]"),
            "m.toml: unknown key 'seed'. Expected one of: network, layers, rule, optimizer, "
            "constraints."),
    Hostile("model or protocol file", "a protocol table in a model file",
            model_edit("[network]", "[training]\nepochs = 3\n\n[network]"),
            "m.toml: unknown key 'training' (a table of a protocol file). Expected one of: "
            "constraints, layers, network, optimizer, rule."),
    Hostile("model or protocol file", "a non-ASCII key in a file",
            model_edit('target = "dtp"', '"tärget" = "dtp"'),
            "m.toml: unknown key 'rule.tärget'. Expected one of:"),
    Hostile("model or protocol file", "an empty key in a file",
            model_edit('target = "dtp"', '"" = "dtp"'), "m.toml: unknown key 'rule.'."),
    Hostile("model or protocol file", "an unknown activation, named by the layer",
            model_edit('activation = "tanh"', 'activation = "tahn"'),
            "m.toml: layers.hidden1.activation: unknown value 'tahn'"),
    Hostile("model or protocol file", '`tau = "1e999 ms"` in a file',
            model_edit('tau = "10 ms"', 'tau = "1e999 ms"'),
            "m.toml: layers.hidden1.tau: a duration must be finite, got '1e999 ms'"),
    Hostile("model or protocol file", "two layers of one name in a file",
            model_edit('name = "hidden2"', 'name = "hidden1"'),
            "m.toml: layers.1.name: layer names must be unique and not 'input': 'hidden1'"),
    Hostile("model or protocol file", "an output layer whose size is not the data's",
            model_edit('name = "output"\nsize = 10', 'name = "output"\nsize = 3'),
            "m.toml: layers.output.size: the output layer has 3 neurons, but dataset 'digits' "
            "has 10 outputs"),
    Hostile("model or protocol file", "a layer of 10⁹ neurons in a file",
            model_edit(HIDDEN2, 'name = "hidden2"\nsize = 1_000_000_000'),
            "m.toml: layers.hidden2.size: 1000000000 neurons: the model's weights alone would "
            "take"),
    Hostile("model or protocol file", "`dt` longer than a τ in a file",
            protocol_edit('dt = "5 ms"', 'dt = "50 ms"'),
            "p.toml: phases.dt: dt = 50 ms is longer than layers.hidden1.tau = 10 ms"),
    Hostile("model or protocol file", "a malformed plasticity rule in a file", model_edit(
        HIDDEN2, HIDDEN2 + '\nconnection = "synapses"\nplasticity = "synaptic"\n'
        'plasticity_rule = "r_in * (r_target_post - r_forward_post"'),
            "m.toml: layers.hidden2.plasticity_rule: 'r_in * (r_target_post - r_forward_post' "
            "is not an expression"),
    Hostile("model or protocol file", "`extends` a file that is not there",
            files('extends = "base.toml"\n'),
            "m.toml: extends: no such file"),
    Hostile("model or protocol file", "`extends` itself", files('extends = "m.toml"\n'),
            "m.toml: extends: 'm.toml' leads back to a file already read (m.toml → m.toml)"),
    Hostile("model or protocol file", "`extends` in a cycle of two files", lambda here: (
        (here / "b.toml").write_text('extends = "m.toml"\n'),
        files('extends = "b.toml"\n')(here))[1],
        "b.toml: extends: 'm.toml' leads back to a file already read (m.toml → b.toml → "
        "m.toml)"),
    Hostile("model or protocol file", "`extends` that is not a file name (`extends = 3`)",
            files("extends = 3\n"), "m.toml: extends: expected the name of a base file"),
    Hostile("model or protocol file", "an unknown key in a protocol file",
            protocol_edit("[training]", "[training]\nepoch = 3"),
            "p.toml: unknown key 'training.epoch'. Expected one of: epochs, batch_size, seed, "
            "divergence_factor, average_weights, keep_partial_batch. Did you mean 'epochs'?"),
    Hostile("model or protocol file", "an unknown data set in a protocol file",
            protocol_edit('dataset = "digits"', 'dataset = "MNIST"'),
            "p.toml: data.dataset: unknown value 'MNIST'"),
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
