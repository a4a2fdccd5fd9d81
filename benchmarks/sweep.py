"""Simulation sweeps: simulations per second of ``jg.simulate`` against a per-sample Python loop
and a vectorized NumPy implementation of the same model.

Simulators: the damped oscillator (closed form) and the SIR epidemic (an ODE: jaxgen integrates it
with diffrax's adaptive Tsit5; the NumPy version is a fixed-step RK4 over the whole batch with a
step of 0.1 day, about as accurate). The Python loop calls the jitted single-example simulator
once per row (the best a loop can do; an un-jitted loop is slower still).

Each figure is the best of ``--repeats`` runs after a warm-up (compilation excluded, reported
separately). JAX uses its default CPU thread pool on all local devices.

Usage:
    python benchmarks/sweep.py [--num-simulations 100000] [--loop-simulations 300]
Writes benchmarks/results/sweep.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_info, write_json

import jaxgen as jg


def numpy_oscillator(rng, theta, times):
    a, g, w = theta[:, :1], theta[:, 1:2], theta[:, 2:3]
    signal = a * np.exp(-g * times) * np.cos(w * times)
    return signal + 0.05 * rng.standard_normal(signal.shape)


def numpy_sir(rng, theta, days, dt=0.1, n=1000, i0=1e-6):
    beta, gamma = theta[:, 0], theta[:, 1]
    s, i = np.full_like(beta, 1.0 - i0), np.full_like(beta, i0)
    t_end = float(days.max())
    steps = int(round(t_end / dt))
    out_idx = {int(round(d / dt)): k for k, d in enumerate(days)}
    obs = np.empty((theta.shape[0], len(days)))

    def f(s, i):
        inf = beta * s * i
        return -inf, inf - gamma * i

    for step in range(steps + 1):
        if step in out_idx:
            obs[:, out_idx[step]] = i
        if step == steps:
            break
        k1 = f(s, i)
        k2 = f(s + 0.5 * dt * k1[0], i + 0.5 * dt * k1[1])
        k3 = f(s + 0.5 * dt * k2[0], i + 0.5 * dt * k2[1])
        k4 = f(s + dt * k3[0], i + dt * k3[1])
        s = s + dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        i = i + dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    p = np.clip(obs, 0, 1)
    return n * p + np.sqrt(n * np.maximum(p * (1 - p), 1e-6)) * rng.standard_normal(p.shape)


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench(name, sim, numpy_fn, args):
    key = jax.random.key(0)
    n = args.num_simulations
    design = np.asarray(sim.default_design())
    out = {}

    start = time.perf_counter()
    jax.block_until_ready(jg.simulate(key, sim, n))
    out["jaxgen_first_call_s"] = time.perf_counter() - start
    t = best_of(lambda: jax.block_until_ready(jg.simulate(key, sim, n)), args.repeats)
    out["jaxgen_sims_per_s"] = n / t

    single = jax.jit(lambda k, th: sim(k, th))
    theta = np.asarray(sim.prior.sample(key, (args.loop_simulations,)))
    keys = jax.random.split(key, args.loop_simulations)
    jax.block_until_ready(single(keys[0], theta[0]))

    def loop():
        return [np.asarray(single(keys[i], theta[i])) for i in range(args.loop_simulations)]

    out["python_loop_sims_per_s"] = args.loop_simulations / best_of(loop, args.repeats)

    rng = np.random.default_rng(0)
    theta_np = np.asarray(sim.prior.sample(key, (n,)), dtype=np.float64)
    out["numpy_sims_per_s"] = n / best_of(lambda: numpy_fn(rng, theta_np, design), args.repeats)
    out["speedup_vs_loop"] = out["jaxgen_sims_per_s"] / out["python_loop_sims_per_s"]
    out["speedup_vs_numpy"] = out["jaxgen_sims_per_s"] / out["numpy_sims_per_s"]
    print(f"{name:18s} jaxgen {out['jaxgen_sims_per_s']:12,.0f}/s  loop "
          f"{out['python_loop_sims_per_s']:9,.0f}/s  numpy {out['numpy_sims_per_s']:12,.0f}/s  "
          f"x{out['speedup_vs_loop']:.0f} vs loop, x{out['speedup_vs_numpy']:.1f} vs numpy",
          flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--num-simulations", type=int, default=100_000)
    p.add_argument("--loop-simulations", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    results = {"config": vars(args), "machine": machine_info(), "simulators": {}}
    results["simulators"]["damped_oscillator"] = bench(
        "damped_oscillator", jg.simulators.DampedOscillator(), numpy_oscillator, args)
    results["simulators"]["sir"] = bench("sir", jg.simulators.SIR(), numpy_sir, args)
    print(f"wrote {write_json('sweep', results)}")


if __name__ == "__main__":
    main()
