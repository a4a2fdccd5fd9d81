"""Shared helpers for the benchmark scripts: timing, thread pinning, JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


@contextmanager
def timer(out: dict, name: str):
    start = time.perf_counter()
    yield
    out[name] = time.perf_counter() - start


def pin_torch_threads(num_threads: int = 1) -> None:
    """One torch thread: on a small shared machine, more threads oversubscribe the cores."""
    import torch

    torch.set_num_threads(num_threads)
    torch.set_num_interop_threads(num_threads)


def machine_info() -> dict:
    import jax

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "jax_devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def write_json(name: str, payload: dict) -> str:
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, default=float)
    return path
