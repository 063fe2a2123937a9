"""The LIF layer's f-I curve under the input it receives, its twin, and the calibrated soft twin.

1. The real input: the first two LIF layers of a model (default ``models/lif_mnist.toml``,
   weights as initialised with ``--seed``) run in Brian2 on ``--digits`` training images
   from the twin's state, as a trial with ``phases.trial_start = "twin"`` starts; the second
   layer's input W₂ r₁ + b₂ is recomputed every step from the first layer's spike traces, as
   the dense pathway does. With ``--poisson-input``: the first layer, under the images as
   Poisson trains (``network.input_encoding = "poisson"``). Printed: the standard deviation
   of that input over time (σ), and the layer's rate (spike count) and trace against its
   twin at the mean input.
2. The curves: the engine's LIF population under constant input and under noise of that σ
   (:func:`bioprop.fi_curve.simulate_fi`), at each ``--dt``; the hard twin, and the soft
   twin whose γ is fitted to the noisy curve (:func:`bioprop.fi_curve.fit_smoothing`).
   Errors are absolute, as fractions of the maximal rate 1 / t_ref, over the currents whose
   simulated rate lies in ``--rates``.
3. The figure (``--out``, default docs/lif_fi_curve.png).

    python analysis/lif_fi_curve.py                       # lif_mnist's second layer
    python analysis/lif_fi_curve.py --model models/lif.toml --poisson-input \
        --rates 0 0.6 --out docs/lif_fi_curve_poisson.png                # digits, Poisson input
    python analysis/lif_fi_curve.py --model models/lif.toml --noise 0 --layer 0 --dt 1
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bioprop.fi_curve import fit_smoothing, simulate_fi, twin_fraction

_GOLDEN = (np.sqrt(5) - 1) / 2  # the engine's spread of v over [reset, θ)


def layer_seconds(layer) -> dict:
    """The layer's LIF parameters, times in seconds."""
    return dict(tau=layer.tau.seconds, threshold=layer.threshold, reset=layer.reset,
                refractory=layer.refractory.seconds)


def _lif_group(name, layer, a, steady, clock):
    """A LIF layer of the engine's, driven by `a`, started as a twin-start trial starts it."""
    from bioprop.spiking import lif_population

    group = lif_population(name, a.size, tau=layer.tau.quantity, threshold=layer.threshold,
                           reset=layer.reset, refractory=layer.refractory.quantity,
                           tau_trace=layer.tau_trace.quantity, clock=clock)
    group.I_ff, group.z, group.r = a.ravel(), steady.ravel(), steady.ravel()
    group.v = layer.reset + (layer.threshold - layer.reset) * ((np.arange(a.size) * _GOLDEN) % 1.0)
    return group


def real_input(model_path, seed, digits, dt, duration, settle, poisson=False):
    """Run the model's first layers on `digits` images and measure the layer that receives
    spike traces: layer 2 (below it a LIF layer on the clamped images) or, with `poisson`,
    layer 1 (below it the images as Poisson trains). Returns σ of its input over time
    (median over neurons) and, per neuron, its mean input, spike-count rate and mean trace
    (fractions of 1 / t_ref)."""
    import brian2 as b2
    from brian2 import Clock, Network, NetworkOperation, SpikeMonitor, second

    from bioprop.brian2.network import simulate
    from bioprop.spec import load_model
    from bioprop.spiking import poisson_input

    spec = load_model(model_path)
    model, x = initial_model(spec, seed, dt)
    x, clock = x[:digits], Clock(dt * second)
    b2.seed(seed)  # the Poisson input's draws
    if poisson:
        net_spec = spec.network
        source = poisson_input("x", x.size, max_rate=net_spec.input_rate * b2.Hz,
                               tau_trace=net_spec.input_tau_trace.quantity, clock=clock)
        source.x, source.z, source.r = x.ravel(), x.ravel(), x.ravel()
        below, index = x, 0
    else:
        a1 = x @ model.forward[1].weight.T + model.forward[1].bias
        below, index = model.activations[1].fn(a1), 1
        source = _lif_group("below", spec.layers[0], a1, below, clock)
    layer, projection = spec.layers[index], model.forward[index + 1]
    a = below @ projection.weight.T + projection.bias
    target = _lif_group("measured", layer, a, model.activations[index + 1].fn(a), clock)
    settle_steps, record = int(round(settle / dt)), []

    def transmit():  # its input from the traces below, every step (the dense pathway)
        current = source.r[:].reshape(below.shape) @ projection.weight.T + projection.bias
        target.I_ff[:] = current.ravel()
        record.append(current)

    net = Network(source, target, NetworkOperation(transmit, clock=clock, when="start"))
    simulate(b2, net, "numpy", settle * second)
    spikes, trace = SpikeMonitor(target), np.zeros(a.size)

    def read():
        trace[:] += target.r[:]

    net.add(spikes, NetworkOperation(read, clock=clock, when="end"))
    simulate(b2, net, "numpy", duration * second)
    currents = np.array(record[settle_steps:])
    rate = spikes.count[:] * layer.refractory.seconds / duration
    return (float(np.median(currents.std(axis=0))), currents.mean(axis=0).ravel(), rate,
            trace / int(round(duration / dt)))


def initial_model(spec, seed, dt):
    """The model as a run with this seed initialises it, and its protocol's training images."""
    from bioprop.datasets import load_dataset
    from bioprop.spec import load_protocol
    from bioprop.training import make_engine

    protocol = load_protocol(spec.protocol, [f"phases.dt={dt * 1e3:g} ms",
                                             "engine.name=reference"])
    # the first of training's two generators initialises the weights
    engine = make_engine(spec, protocol,
                         np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0]))
    return engine.model, load_dataset(protocol.data.dataset, seed=seed).x_train


def poisson_input_noise(model_path, seed, digits, dt):
    """σ of the first layer's input W₁ r₀ + b₁ when the input is Poisson spike trains
    (``network.input_encoding = "poisson"``), derived: a Poisson train of rate ν filtered by
    the double trace (jump J = 1 / (ν_in τ)) has variance ν J² τ / 4, so
    σ_i² = Σ_j W_ij² x_j / (4 ν_in τ). Median over the neurons and `digits` images."""
    from bioprop.spec import load_model

    spec = load_model(model_path)
    model, x = initial_model(spec, seed, dt)
    rate, tau = spec.network.input_rate, spec.network.input_tau_trace.seconds
    variance = x[:digits] @ (model.forward[1].weight ** 2).T / (4 * rate * tau)
    return float(np.median(np.sqrt(variance)))


def binned(x, y, edges):
    """Mean of y in each bin of x (NaN where empty) and the bins' centres."""
    which = np.digitize(x, edges) - 1
    means = np.array([y[which == i].mean() if np.any(which == i) else np.nan
                      for i in range(len(edges) - 1)])
    return 0.5 * (edges[1:] + edges[:-1]), means


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/lif_mnist.toml")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--digits", type=int, default=20)
    parser.add_argument("--dt", type=float, nargs="+", default=[1.0, 0.5], help="ms")
    parser.add_argument("--noise", type=float, default=None,
                        help="σ of the input; default: measured in the real network")
    parser.add_argument("--poisson-input", action="store_true",
                        help="measure layer 1 under Poisson input trains (else layer 2)")
    parser.add_argument("--layer", type=int, default=None,
                        help="which layer's parameters the curves use (0: the first); "
                             "default: the one measured")
    parser.add_argument("--rates", type=float, nargs=2, default=[0.0, 0.5])
    parser.add_argument("--out", default="docs/lif_fi_curve.png")
    args = parser.parse_args(argv)

    from bioprop.spec import load_model

    spec = load_model(args.model)
    if args.layer is None:
        args.layer = 0 if args.poisson_input else 1
    params = layer_seconds(spec.layers[args.layer])
    tau_trace = spec.layers[args.layer].tau_trace.seconds
    real = None
    if args.noise is None:
        real = real_input(args.model, args.seed, args.digits, args.dt[0] * 1e-3, 0.5, 0.1,
                          poisson=args.poisson_input)
        sigma, mean_in, rate, trace = real
        hard = twin_fraction(mean_in, dt=args.dt[0] * 1e-3, **params)
        derived = (f"; derived for Poisson trains: "
                   f"{poisson_input_noise(args.model, args.seed, args.digits, args.dt[0] * 1e-3):.4f}"
                   if args.poisson_input else "")
        print(f"real network ({args.model}, {args.digits} digits, dt {args.dt[0]} ms), layer "
              f"{args.layer + 1}: σ of its input over time = {sigma:.4f} (median over neurons"
              f"{derived}); mean rate {rate.mean():.4f}, 95th percentile "
              f"{np.percentile(rate, 95):.4f}; twin at the mean input: mean {hard.mean():.4f}; "
              f"trace − count {np.mean(trace - rate):+.5f}")
    else:
        sigma = args.noise
    span = params["threshold"] - params["reset"]
    # dense near threshold, where the noise smooths the curve
    currents = np.unique(np.concatenate([
        np.linspace(params["reset"] - 0.5 * span, params["threshold"] + 2.5 * span, 24),
        params["threshold"] + span * np.linspace(-0.3, 0.3, 21)]))
    results = {}
    for dt_ms in args.dt:
        dt = dt_ms * 1e-3
        const = simulate_fi(currents, tau_trace=tau_trace, dt=dt, **params)
        noisy = simulate_fi(currents, tau_trace=tau_trace, dt=dt, noise_std=sigma, **params)
        gamma, err = fit_smoothing(noisy, dt=dt, rate_range=args.rates, **params)
        keep = (noisy.rate >= args.rates[0]) & (noisy.rate <= args.rates[1])
        hard = twin_fraction(currents, dt=dt, **params)
        soft = twin_fraction(currents, dt=dt, smoothing=gamma, **params)
        line = (f"dt {dt_ms} ms, σ {sigma:.4f}: γ = {gamma:.5f}; max |twin − simulated| over "
                f"rates {args.rates[0]}–{args.rates[1]}: hard twin vs constant input "
                f"{np.max(np.abs(hard - const.rate)[keep]):.4f}, hard vs noisy "
                f"{np.max(np.abs(hard - noisy.rate)[keep]):.4f}, soft vs noisy {err:.4f}; "
                f"trace − count {np.max(np.abs(noisy.trace - noisy.rate)):.4f}")
        if real is not None and dt_ms == args.dt[0]:
            soft_real = twin_fraction(real[1], dt=dt, smoothing=gamma, **params)
            hard_real = twin_fraction(real[1], dt=dt, **params)
            firing = (hard_real > 0) | (real[2] > 0)  # the silent ones agree trivially
            hard_gap = np.abs(hard_real - real[2])[firing]
            soft_gap = np.abs(soft_real - real[2])[firing]
            line += (f"; real layer, its {firing.sum()} firing neurons, mean |twin − count|: "
                     f"hard {hard_gap.mean():.4f}, soft {soft_gap.mean():.4f}")
        print(line)
        results[dt_ms] = (const, noisy, hard, soft, gamma)
    plot(args, currents, results, real, sigma)


def plot(args, currents, results, real, sigma):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.2), squeeze=False)
    for ax, (dt_ms, (const, noisy, hard, soft, gamma)) in zip(axes[0], results.items()):
        ax.plot(currents, const.rate, "o", ms=3, color="0.5", label="simulated, constant input")
        ax.errorbar(currents, noisy.rate, yerr=noisy.stderr, fmt="s", ms=3, color="C0",
                    label=f"simulated, noise σ = {sigma:.2g}")
        ax.plot(currents, noisy.trace, "x", ms=4, color="C2", label="its spike trace (mean)")
        ax.plot(currents, hard, "-", color="k", lw=1, label="twin (hard LIF)")
        ax.plot(currents, soft, "-", color="C3", lw=1.5, label=f"soft-LIF twin, γ = {gamma:.2g}")
        if real is not None and dt_ms == args.dt[0]:
            edges = np.linspace(currents[0], currents[-1], 25)
            centre, mean_rate = binned(real[1], real[2], edges)
            ax.plot(centre, mean_rate, "^", ms=4, color="C1",
                    label=f"real layer {args.layer + 1} (binned by mean input)")
        ax.set_xlabel("mean input current")
        ax.set_ylabel("rate / maximal rate")
        ax.set_title(f"dt = {dt_ms} ms")
        ax.set_ylim(-0.02, max(0.6, args.rates[1] + 0.1))
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"LIF f-I curve: {Path(args.model).name}, layer {args.layer + 1}", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
