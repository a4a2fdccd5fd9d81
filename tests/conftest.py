"""Test-suite settings.

The tests run many small programs once each, so XLA compile time dominates the suite. Cheaper
XLA CPU compile options (no backend optimisation passes, no fusion emitters) halve the suite's
CPU time; they change speed only, not results beyond float rounding. They are set before JAX
starts its backend, and subprocesses (notebook kernels, multi-device checks) inherit them. A
caller's own XLA_FLAGS are kept and take precedence.
"""

import os

_FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{_FAST_COMPILE_FLAGS} {os.environ.get('XLA_FLAGS', '')}".strip()
