"""Starts the checks that need their own process as soon as the simulator tests begin, so they
run beside the main test process instead of after it."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent


class BackgroundChecks:
    def __init__(self, out_dir: Path):
        env = dict(os.environ)
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
        ).strip()
        env["JAX_PLATFORMS"] = "cpu"
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
        self.out_dir = out_dir
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "_background_checks.py"), str(out_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._finished = False

    def load(self, name: str) -> dict:
        if not self._finished:
            output, _ = self.process.communicate(timeout=480)
            self._finished = True
            assert self.process.returncode == 0, f"background checks failed:\n{output}"
        with np.load(self.out_dir / name) as data:
            return dict(data)

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture(scope="session", autouse=True)
def background_checks(tmp_path_factory):
    checks = BackgroundChecks(tmp_path_factory.mktemp("simulators_background"))
    yield checks
    checks.close()
