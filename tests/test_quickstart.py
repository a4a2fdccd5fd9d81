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
    design = report["results"]["design"]
    times = design["optimized_times"]
    assert len(times) == 10 and all(0.0 <= t <= 5.0 for t in times) and times == sorted(times)
    assert 0 < design["eig_even"] < 20 and 0 < design["eig_optimized"] < 20
    law = report["results"]["law"]
    assert law["num_rows"] == 600 and law["num_evaluations"] > 0 and law["train_mse"] >= 0
    assert "Experiment design" in text and "Law behind the data" in text
    for name in ("posterior_pairplot.png", "coverage.png", "sbc_ranks.png", "designs.png"):
        assert os.path.getsize(out / name) > 1000
