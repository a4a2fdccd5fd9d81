"""`jaxgen quickstart` runs end to end in its fast mode and writes its report and plots."""

import json
import os

from jaxgen.cli import main


def test_quickstart_fast(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--fast", "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Posterior for the observation" in text and "coverage" in text
    report = json.loads((out / "report.json").read_text())
    post = report["results"]["posterior"]
    assert len(post["mean"]) == 3 and all(s > 0 for s in post["sd"])
    # Even the fast run (2,000 simulations, 15 epochs) places the truth within 4 posterior sd.
    for t, m, s in zip(post["truth"], post["mean"], post["sd"]):
        assert abs(m - t) < 4 * s
    for name in ("posterior_pairplot.png", "coverage.png", "sbc_ranks.png"):
        assert os.path.getsize(out / name) > 1000
