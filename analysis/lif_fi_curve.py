"""The LIF layer's f-I curve under the input it receives, its twin, and the calibrated soft twin.

1. The real input: the first two LIF layers of a model (default ``models/lif_mnist.toml``,
   weights as initialised with ``--seed``) run in Brian2 on ``--digits`` training images
   from the twin's state, as a trial with ``phases.trial_start = "twin"`` starts; the second
   layer's input W₂ r₁ + b₂ is recomputed every step from the first layer's spike traces, as
   the dense pathway does. Printed: the standard deviation of that input over time (σ), and
   the second layer's rate (spike count) and trace against its twin at the mean input.
2. The curves: the engine's LIF population under constant input and under noise of that σ
   (:func:`bioprop.fi_curve.simulate_fi`), at each ``--dt``; the hard twin, and the soft
   twin whose γ is fitted to the noisy curve (:func:`bioprop.fi_curve.fit_smoothing`).
   Errors are absolute, as fractions of the maximal rate 1 / t_ref, over the currents whose
   simulated rate lies in ``--rates``.
3. The figure (``--out``, default docs/lif_fi_curve.png).

    python analysis/lif_fi_curve.py                       # lif_mnist's second layer
    python analysis/lif_fi_curve.py --noise 0 --model models/lif.toml --dt 1   # digits
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


def real_input(model_path, seed, digits, dt, duration, settle):
    """Run layers 1 and 2 of the model on `digits` images; σ of layer 2's input, and its
    mean input, spike-count rate and mean trace per neuron (fractions of 1 / t_ref)."""
    import brian2 as b2
    from brian2 import Clock, Network, NetworkOperation, SpikeMonitor, second

    from bioprop.brian2.network import simulate
    from bioprop.spec import load_model
    from bioprop.spiking import lif_population

    spec = load_model(model_path)
    model, x = initial_model(spec, seed, dt)
    x = x[:digits]
    first, second_layer = spec.layers[0], spec.layers[1]
    W1, b1 = model.forward[1].weight, model.forward[1].bias
    W2, b2_ = model.forward[2].weight, model.forward[2].bias
    a1 = x @ W1.T + b1
    h1 = model.activations[1].fn(a1)
    a2 = h1 @ W2.T + b2_
    clock = Clock(dt * second)
    groups = []
    for name, layer, a in (("h1", first, a1), ("h2", second_layer, a2)):
        group = lif_population(name, a.size, tau=layer.tau.quantity, threshold=layer.threshold,
                               reset=layer.reset, refractory=layer.refractory.quantity,
                               tau_trace=layer.tau_trace.quantity, clock=clock)
        group.I_ff = a.ravel()
        steady = model.activations[len(groups) + 1].fn(a).ravel()
        group.z, group.r = steady, steady
        group.v = layer.reset + (layer.threshold - layer.reset) * (
            (np.arange(a.size) * _GOLDEN) % 1.0)
        groups.append(group)
    settle_steps, record = int(round(settle / dt)), []

    def transmit():  # layer 2's input from layer 1's traces, every step (the dense pathway)
        current = groups[0].r[:].reshape(a1.shape) @ W2.T + b2_
        groups[1].I_ff[:] = current.ravel()
        record.append(current)

    net = Network(*groups, NetworkOperation(transmit, clock=clock, when="start"))
    simulate(b2, net, "numpy", settle * second)
    spikes = SpikeMonitor(groups[1])
    net.add(spikes)
    trace = np.zeros(a2.size)

    def read():
        trace[:] += groups[1].r[:]

    net.add(NetworkOperation(read, clock=clock, when="end"))
    simulate(b2, net, "numpy", duration * second)
    currents = np.array(record[settle_steps:])
    rate = spikes.count[:] * second_layer.refractory.seconds / duration
    return (float(np.median(currents.std(axis=0))), currents.mean(axis=0).ravel(), rate,
            trace / int(round(duration / dt)), layer_seconds(second_layer),
            second_layer.tau_trace.seconds)


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
                        help="σ of the first layer's input from Poisson input trains (derived)")
    parser.add_argument("--layer", type=int, default=1,
                        help="which layer's parameters the curves use (0: the first)")
    parser.add_argument("--rates", type=float, nargs=2, default=[0.0, 0.5])
    parser.add_argument("--out", default="docs/lif_fi_curve.png")
    args = parser.parse_args(argv)

    from bioprop.spec import load_model

    spec = load_model(args.model)
    params = layer_seconds(spec.layers[args.layer])
    tau_trace = spec.layers[args.layer].tau_trace.seconds
    real = None
    if args.poisson_input:
        sigma = poisson_input_noise(args.model, args.seed, args.digits, args.dt[0] * 1e-3)
        print(f"Poisson input ({args.model}, {args.digits} digits): σ of layer 1's input = "
              f"{sigma:.4f} (median over neurons)")
    elif args.noise is None:
        real = real_input(args.model, args.seed, args.digits, args.dt[0] * 1e-3, 0.5, 0.1)
        sigma, mean_in, rate, trace = real[:4]
        hard = twin_fraction(mean_in, dt=args.dt[0] * 1e-3, **params)
        print(f"real network ({args.model}, {args.digits} digits, dt {args.dt[0]} ms): "
              f"σ of layer 2's input over time = {sigma:.4f} (median over neurons); "
              f"mean rate {rate.mean():.4f}, 95th percentile {np.percentile(rate, 95):.4f}; "
              f"twin at the mean input: mean {hard.mean():.4f}; trace − count "
              f"{np.mean(trace - rate):+.5f}")
    else:
        sigma = args.noise
    span = params["threshold"] - params["reset"]
    currents = np.linspace(params["reset"] - 0.5 * span, params["threshold"] + 2.5 * span, 36)
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
            hard_gap, soft_gap = np.abs(hard_real - real[2]), np.abs(soft_real - real[2])
            line += (f"; real layer 2, mean |twin − count|: hard {hard_gap.mean():.4f}, "
                     f"soft {soft_gap.mean():.4f}")
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
                    label=f"simulated, noise σ = {sigma:.3f}")
        ax.plot(currents, noisy.trace, "x", ms=4, color="C2", label="its spike trace (mean)")
        ax.plot(currents, hard, "-", color="k", lw=1, label="twin (hard LIF)")
        ax.plot(currents, soft, "-", color="C3", lw=1.5, label=f"soft-LIF twin, γ = {gamma:.4f}")
        if real is not None and dt_ms == args.dt[0]:
            edges = np.linspace(currents[0], currents[-1], 25)
            centre, mean_rate = binned(real[1], real[2], edges)
            ax.plot(centre, mean_rate, "^", ms=4, color="C1",
                    label="real layer 2 (binned by mean input)")
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
