"""Hostile inputs from the command line, ``--set`` and model or protocol files.

A file case writes its files into the case's fresh directory: the shipped default model
or protocol with one edit (:func:`model_edit`, :func:`protocol_edit`), or a text of its own
(:func:`files`), so that each message names ``m.toml`` or ``p.toml`` as the user wrote it.
"""
from pathlib import Path

from case import Hostile

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


def run_set(*overrides):
    argv = ["run"]
    for text in overrides:
        argv += ["--set", text]
    return argv


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
            "nosuch.toml: no such file"),
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

    # ---------------------------------------------------------------------- override
    # misspelt or malformed keys: once silently ignored
    Hostile("override", "`--set rul.target=bp` (a misspelt table)", run_set("rul.target=bp"),
            "--set rul.target: unknown table 'rul'. Expected one of: data, engine, layers, "
            "network, optimizer, phases, record, rule, training. Did you mean 'rule'?"),
    Hostile("override", "`--set trainig.epochs=1` (a misspelt protocol table)",
            run_set("trainig.epochs=1"), "unknown table 'trainig'"),
    Hostile("override", "`--set nosuchkey=1`", run_set("nosuchkey=1"),
            "--set nosuchkey: unknown table 'nosuchkey'"),
    Hostile("override", "`--set =1` (an empty key)", run_set("=1"),
            "--set '': '' is not a key: a key is ASCII words without spaces joined by dots"),
    Hostile("override", "`--set rule..target=tp` (an empty part)", run_set("rule..target=tp"),
            "--set 'rule..target': '' is not a key"),
    Hostile("override", "`--set rulé.target=tp` (a non-ASCII table)",
            run_set("rulé.target=tp"), "--set 'rulé.target': 'rulé' is not a key"),
    Hostile("override", "`--set rule.tärget=tp` (a non-ASCII key)",
            run_set("rule.tärget=tp"), "--set 'rule.tärget': 'tärget' is not a key"),
    Hostile("override", "`--set rule.targte=tp` (a misspelt key)", run_set("rule.targte=tp"),
            "--set rule.targte=tp: unknown key 'rule.targte'. Expected one of:"),
    Hostile("override", "`--set rule.target.x=1` (a key inside a value)",
            run_set("rule.target.x=1"),
            "--set rule.target.x=1: rule.target is 'dtp', not a table, so it has no key 'x'"),
    Hostile("override", "`--set layers.hiden1.size=3` (a misspelt layer)",
            run_set("layers.hiden1.size=3"), "no layer 'hiden1' in "),
    Hostile("override", "`--set layers.7.size=3` (a layer index past the end)",
            run_set("layers.7.size=3"), "--set layers.7.size=3: no layer '7' in "),
    Hostile("override", "`--set layers.hidden1=3` (a whole layer)", run_set("layers.hidden1=3"),
            "name a key inside the layer"),
    Hostile("override", "`--set rule=tp` (a value for a whole table)", run_set("rule=tp"),
            "--set rule=tp: expected a table, got 'tp'"),
    # ranges declared beside the fields
    Hostile("override", "`--set layers.hidden1.size=0`", run_set("layers.hidden1.size=0"),
            "--set layers.hidden1.size=0: must be positive, got 0"),
    Hostile("override", "`--set layers.1.size=-3` (a layer by index)",
            run_set("layers.1.size=-3"), "--set layers.1.size=-3: must be positive, got -3"),
    Hostile("override", "`--set network.input_size=0`", run_set("network.input_size=0"),
            "--set network.input_size=0: must be positive, got 0"),
    Hostile("override", "a negative learning rate", run_set("optimizer.forward.lr=-0.001"),
            "--set optimizer.forward.lr=-0.001: must be positive, got -0.001"),
    Hostile("override", "a learning rate of 0", run_set("optimizer.feedback.lr=0"),
            "--set optimizer.feedback.lr=0: must be positive, got 0.0"),
    Hostile("override", "a NaN learning rate", run_set("optimizer.forward.lr=nan"),
            "--set optimizer.forward.lr=nan: must be a finite number, got nan"),
    Hostile("override", "an infinite learning rate", run_set("optimizer.forward.lr=inf"),
            "--set optimizer.forward.lr=inf: must be a finite number, got inf"),
    Hostile("override", "a negative `rule.target_step`", run_set("rule.target_step=-1"),
            "--set rule.target_step=-1: must be ≥ 0, got -1.0"),
    Hostile("override", "a NaN `rule.target_step`", run_set("rule.target_step=nan"),
            "--set rule.target_step=nan: must be a finite number, got nan"),
    Hostile("override", "`--set rule.damping=-1`", run_set("rule.damping=-1"),
            "--set rule.damping=-1: must be positive, got -1.0"),
    Hostile("override", "a negative noise", run_set("rule.noise=-0.1"),
            "--set rule.noise=-0.1: must be ≥ 0, got -0.1"),
    Hostile("override", "`--set layers.hidden1.p_connect=1.5`",
            run_set("layers.hidden1.p_connect=1.5"),
            "--set layers.hidden1.p_connect=1.5: a connection probability must lie in (0, 1], "
            "got 1.5"),
    Hostile("override", "a negative `lr_scale`", run_set("layers.output.lr_scale=-1"),
            "--set layers.output.lr_scale=-1: a learning-rate scale must be ≥ 0, got -1.0"),
    Hostile("override", "`--set engine.threads=0`", run_set("engine.threads=0"),
            "--set engine.threads=0: must be ≥ 1, got 0"),
    Hostile("override", "a negative seed", run_set("training.seed=-1"),
            "--set training.seed=-1: must be a whole number in [0, 2**63), got -1"),
    Hostile("override", "a seed of 2⁶³", run_set("training.seed=9223372036854775808"),
            "--set training.seed=9223372036854775808: must be a whole number in [0, 2**63)"),
    Hostile("override", "a seed above 2⁶⁴", run_set("training.seed=99999999999999999999"),
            "--set training.seed=99999999999999999999: must be a whole number in [0, 2**63)"),
    Hostile("override", "`--set training.batch_size=0`", run_set("training.batch_size=0"),
            "--set training.batch_size=0: must be positive, got 0"),
    Hostile("override", "`--set training.epochs=0`", run_set("training.epochs=0"),
            "--set training.epochs=0: must be positive, got 0"),
    Hostile("override", "`--set data.n_train=-5`", run_set("data.n_train=-5"),
            "--set data.n_train=-5: must be ≥ 0, got -5"),
    Hostile("override", "`--set record.activity_dt_factor=0`",
            run_set("record.activity_dt_factor=0"),
            "--set record.activity_dt_factor=0: must be ≥ 1, got 0"),
    Hostile("override", "a divergence factor of 1 (every epoch would diverge)",
            run_set("training.divergence_factor=1"),
            "--set training.divergence_factor=1: must be > 1, got 1.0"),
    # wrong types
    Hostile("override", "a word for a whole number (`training.epochs=ten`)",
            run_set("training.epochs=ten"),
            "--set training.epochs=ten: expected int, got str 'ten'"),
    Hostile("override", "a fraction for a whole number (`training.epochs=1.5`)",
            run_set("training.epochs=1.5"), "--set training.epochs=1.5: expected int, got float"),
    Hostile("override", "a boolean for a whole number (`training.epochs=true`)",
            run_set("training.epochs=true"), "--set training.epochs=true: expected int, got bool"),
    Hostile("override", "a boolean for a number (`optimizer.forward.lr=true`)",
            run_set("optimizer.forward.lr=true"),
            "--set optimizer.forward.lr=true: expected float, got bool"),
    Hostile("override", "a number for a boolean (`rule.layer_norm=1`)",
            run_set("rule.layer_norm=1"), "--set rule.layer_norm=1: expected bool, got int"),
    Hostile("override", "a table for a number (`layers.hidden1.size={n=3}`)",
            run_set("layers.hidden1.size={n=3}"),
            "--set layers.hidden1.size={n=3}: expected int, got dict"),
    Hostile("override", "a list for a number (`training.batch_size=[32]`)",
            run_set("training.batch_size=[32]"),
            "--set training.batch_size=[32]: expected int, got list"),
    Hostile("override", "a word for a list (`record.layers=hidden1`)",
            run_set("record.layers=hidden1"),
            "--set record.layers=hidden1: expected an array, got str 'hidden1'"),
    Hostile("override", "a number for a name (`layers.hidden1.activation=3`)",
            run_set("layers.hidden1.activation=3"),
            "--set layers.hidden1.activation=3: expected str, got int 3"),
    # unknown values of every registry key
    Hostile("override", "an unknown activation (`tahn`)", run_set("layers.hidden1.activation=tahn"),
            "--set layers.hidden1.activation=tahn: unknown value 'tahn'. Expected one of: "
            "linear, logistic, relu, sign, tanh. Did you mean 'tanh'?"),
    Hostile("override", "an unknown population kind", run_set("layers.hidden1.population=izhikevich"),
            "--set layers.hidden1.population=izhikevich: unknown value 'izhikevich'"),
    Hostile("override", "an unknown target rule", run_set("rule.target=backprop"),
            "--set rule.target=backprop: unknown value 'backprop'"),
    Hostile("override", "an unknown feedback objective", run_set("rule.feedback=autoencoder"),
            "--set rule.feedback=autoencoder: unknown value 'autoencoder'"),
    Hostile("override", "an unknown optimizer", run_set("optimizer.forward.name=adamw"),
            "--set optimizer.forward.name=adamw: unknown value 'adamw'"),
    Hostile("override", "an unknown engine", run_set("engine.name=nest"),
            "--set engine.name=nest: unknown value 'nest'"),
    Hostile("override", "an unknown code generation target",
            run_set("engine.codegen=cpp_standalone"),
            "--set engine.codegen=cpp_standalone: unknown value 'cpp_standalone'"),
    Hostile("override", "an unknown float type", run_set("engine.dtype=float16"),
            "--set engine.dtype=float16: unknown value 'float16'"),
    Hostile("override", "an unknown connection", run_set("layers.hidden1.connection=sparse"),
            "--set layers.hidden1.connection=sparse: unknown value 'sparse'"),
    Hostile("override", "an unknown plasticity", run_set("layers.hidden1.plasticity=stdp"),
            "--set layers.hidden1.plasticity=stdp: unknown value 'stdp'"),
    Hostile("override", "an input encoding no input can carry (`lif`)",
            run_set("network.input_encoding=lif"),
            "--set network.input_encoding=lif: unknown value 'lif'. Expected one of: poisson, rate"),
    Hostile("override", "an unknown loss", run_set("network.loss=hinge"),
            "--set network.loss=hinge: unknown value 'hinge'"),
    Hostile("override", "an unknown initialisation", run_set("network.init=zeros"),
            "--set network.init=zeros: unknown value 'zeros'"),
    Hostile("override", "an unknown data set", run_set("data.dataset=cifar10"),
            "--set data.dataset=cifar10: unknown value 'cifar10'. Expected one of: digits, "
            "fashion_mnist, mnist, teacher"),
    Hostile("override", "an unknown top layer", run_set("rule.top=hidden2"),
            "--set rule.top=hidden2: unknown value 'hidden2'"),
    Hostile("override", "an unknown schedule", run_set("rule.schedule=random"),
            "--set rule.schedule=random: unknown value 'random'"),
    Hostile("override", "an unknown side information", run_set("rule.side_information=labels"),
            "--set rule.side_information=labels: unknown value 'labels'. Expected one of: "
            "activity, label, none. Did you mean 'label'?"),
    Hostile("override", "an unknown spiking target", run_set("rule.spiking_target=rate"),
            "--set rule.spiking_target=rate: unknown value 'rate'"),
    Hostile("override", "an unknown recorded variable", run_set('record.variables=["voltage"]'),
            "--set record.variables=[\"voltage\"]: unknown ['voltage']"),
    # durations
    Hostile("override", '`tau = "1e999 ms"` (an infinite duration)',
            run_set('layers.hidden1.tau="1e999 ms"'),
            '--set layers.hidden1.tau="1e999 ms": a duration must be finite, got \'1e999 ms\''),
    Hostile("override", '`dt = "- ms"` (no number)', run_set('phases.dt="- ms"'),
            '--set phases.dt="- ms": expected a duration with units such as "10 ms" (a number, '
            'then one of the units ms, msecond, us, usecond, s, second)'),
    Hostile("override", "a duration without units (`tau=10`)", run_set("layers.hidden1.tau=10"),
            "--set layers.hidden1.tau=10: expected a duration with units"),
    Hostile("override", 'a unit bioprop does not know (`"10 min"`)',
            run_set('layers.hidden1.tau="10 min"'), "got '10 min'"),
    Hostile("override", "a negative duration", run_set('layers.hidden1.tau_apical="-5 ms"'),
            "--set layers.hidden1.tau_apical=\"-5 ms\": a duration must be positive, got '-5 ms'"),
    Hostile("override", "a duration of zero", run_set('phases.forward="0 ms"'),
            "--set phases.forward=\"0 ms\": a duration must be positive, got '0 ms'"),
    Hostile("override", "`dt` longer than a τ", run_set('phases.dt="20 ms"'),
            '--set phases.dt="20 ms": dt = 20 ms is longer than layers.hidden1.tau = 10 ms'),
    Hostile("override", "a phase shorter than `dt`", run_set('phases.target="1 ms"'),
            '--set phases.target="1 ms": a phase must last at least one time step'),
    Hostile("override", "a delay on a dense pathway", run_set('layers.hidden1.delay="2 ms"'),
            '--set layers.hidden1.delay="2 ms": a delay needs connection = "synapses"'),
    # record.path placeholders
    Hostile("override", "an unknown placeholder in `record.path`",
            run_set('record.path="runs/{nope}.h5"'),
            "--set record.path=\"runs/{nope}.h5\": unknown placeholder {nope} in "
            "'runs/{nope}.h5'. Expected some of: {model}, {seed}."),
    Hostile("override", "a misspelt placeholder in `record.path`",
            run_set('record.path="runs/{modle}.h5"'), "Did you mean 'model'?"),
    Hostile("override", "an unclosed `{` in `record.path`", run_set('record.path="runs/{model.h5"'),
            "--set record.path=\"runs/{model.h5\": 'runs/{model.h5' is not a valid pattern"),
    # combinations and the model against its protocol and data
    Hostile("override", "a batch larger than the training set", run_set("training.batch_size=100000"),
            "--set training.batch_size=100000: 100000 is larger than the training set: dataset "
            "'digits' has 1437 training samples"),
    Hostile("override", "an input size that is not the data's", run_set("network.input_size=784"),
            "--set network.input_size=784: is 784, but dataset 'digits' has 64 input features"),
    Hostile("override", "an output size that is not the data's", run_set("layers.output.size=2"),
            "--set layers.output.size=2: the output layer has 2 neurons, but dataset 'digits' "
            "has 10 outputs"),
    Hostile("override", "a layer of 10⁹ neurons", run_set("layers.hidden1.size=1000000000"),
            "--set layers.hidden1.size=1000000000: 1000000000 neurons: the model's weights "
            "alone would take"),
    Hostile("override", "two layers of one name", run_set("layers.hidden2.name=hidden1"),
            "layer names must be unique and not 'input': 'hidden1'"),
    Hostile("override", "a layer named `input`", run_set("layers.hidden1.name=input"),
            "layer names must be unique and not 'input'"),
    Hostile("override", "`rule.iterations` for a rule that does not iterate",
            run_set("rule.iterations=3"), "--set rule.iterations=3: only the 'iterative' rule "
            "iterates; rule.target is 'dtp'"),
    Hostile("override", "a feedback learning-rate scale on the first layer",
            run_set("layers.hidden1.feedback_lr_scale=2"),
            "--set layers.hidden1.feedback_lr_scale=2: the first layer has no feedback pathway"),
    Hostile("override", "synaptic plasticity on a dense pathway",
            run_set("layers.hidden1.plasticity=synaptic"),
            "--set layers.hidden1.plasticity=synaptic: \"synaptic\" needs connection = "
            "\"synapses\""),
    Hostile("override", "a plasticity rule without synaptic plasticity",
            run_set("layers.hidden1.plasticity_rule=w"),
            "--set layers.hidden1.plasticity_rule=w: a rule needs plasticity = \"synaptic\""),
    Hostile("override", "a plasticity rule that is not an expression (`r_in *`)",
            run_set("layers.hidden1.connection=synapses", "layers.hidden1.plasticity=synaptic",
                    "optimizer.forward.name=sgd", "layers.hidden1.plasticity_rule=r_in *"),
            "--set layers.hidden1.plasticity_rule=r_in *: 'r_in *' is not an expression"),
    Hostile("override", "a plasticity rule with an unknown name",
            run_set("layers.hidden1.connection=synapses", "layers.hidden1.plasticity=synaptic",
                    "optimizer.forward.name=sgd", "layers.hidden1.plasticity_rule=eta * r_in"),
            "unknown name(s) 'eta' in 'eta * r_in'"),
    Hostile("override", "a plasticity rule Brian2 cannot parse (`w[0]`, indexing)",
            run_set("layers.hidden1.connection=synapses", "layers.hidden1.plasticity=synaptic",
                    "optimizer.forward.name=sgd", "layers.hidden1.plasticity_rule=w[0] * r_in"),
            "--set layers.hidden1.plasticity_rule=w[0] * r_in: 'w[0] * r_in' is not an "
            "expression Brian2 can run: Brian equations/expressions do not support indexing"),
    Hostile("override", "a plasticity rule that calls a variable (`w(r_in)`)",
            run_set("layers.hidden1.connection=synapses", "layers.hidden1.plasticity=synaptic",
                    "optimizer.forward.name=sgd", "layers.hidden1.plasticity_rule=w(r_in)"),
            "'w' is not a function, in 'w(r_in)'"),
    Hostile("override", "activity of batches without activity",
            run_set("record.activity_batch_every=2"),
            "--set record.activity_batch_every=2: records batches in the epochs whose activity "
            "is recorded"),
    Hostile("override", "a recorded layer the model does not have",
            run_set('record.layers=["hiden2"]'),
            "--set record.layers=[\"hiden2\"]: 'hiden2' is not one of the model's layers "
            "(hidden1, hidden2, output"),
    Hostile("override", "a recorded pathway the model does not have",
            run_set('record.pathways=["feedback_1"]'), "'feedback_1' is not one of the model's "
            "pathways"),
    Hostile("override", "a LIF threshold at its reset",
            run_set("layers.hidden1.population=lif", "layers.hidden1.threshold=0"),
            "--set layers.hidden1.threshold=0: "),
    Hostile("override", "a Poisson input faster than one spike per step",
            run_set("network.input_encoding=poisson", "network.input_rate=1000"),
            "--set network.input_rate=1000: 1000.0 Hz × dt = 5 > 1"),
    Hostile("override", "a transfer function on a kind that fixes its own",
            run_set("layers.hidden1.population=lif", "layers.hidden1.activation=relu"),
            "--set layers.hidden1.activation=relu: a 'lif' population fixes its own transfer "
            "function"),

    # -------------------------------------------------------- model or protocol file
    Hostile("model or protocol file", "a TOML syntax error (a missing `=`)",
            model_edit("size = 128", "size 128"),
            "m.toml: not valid TOML: Expected '=' after a key in a key/value pair (at line 15"),
    Hostile("model or protocol file", "an unclosed string",
            protocol_edit('dataset = "digits"', 'dataset = "digits'),
            "p.toml: not valid TOML: "),
    Hostile("model or protocol file", "a key given twice in a table",
            model_edit("size = 128", "size = 128\nsize = 64"),
            "m.toml: not valid TOML: Cannot overwrite a value (at line 16"),
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
            "m.toml: unknown key 'seed'. Expected one of: network, layers, rule, optimizer."),
    Hostile("model or protocol file", "a protocol table in a model file",
            model_edit("[network]", "[training]\nepochs = 3\n\n[network]"),
            "m.toml: unknown key 'training' (a table of a protocol file). Expected one of: "
            "layers, network, optimizer, rule."),
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
            "divergence_factor. Did you mean 'epochs'?"),
    Hostile("model or protocol file", "an unknown data set in a protocol file",
            protocol_edit('dataset = "digits"', 'dataset = "MNIST"'),
            "p.toml: data.dataset: unknown value 'MNIST'"),
]
