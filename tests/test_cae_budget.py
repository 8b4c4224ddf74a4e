"""benchmarks/cae_budget.py: CAE variants trained for a fixed number of steps on a run's crops."""

from __future__ import annotations

import json

import pytest
from edge_fixtures import cached_tiny_run

from scae_tf.config import RunConfig
from scae_tf.errors import ScaeError

pytestmark = pytest.mark.slow


def test_update_sections_applies_sections_and_rejects_others():
    from scae_tf.config import update_sections

    config = update_sections(RunConfig(), {"cae": {"depth": 3}, "training": {"corruption": 0.0}})
    assert config.cae.depth == 3 and config.training.corruption == 0.0
    assert config.cae.latent_filters == RunConfig().cae.latent_filters
    with pytest.raises(ScaeError, match="RunConfig sections"):
        update_sections(RunConfig(), {"depth": 3})
    with pytest.raises(ScaeError, match="unknown key"):
        update_sections(RunConfig(), {"cae": {"dpeth": 3}})


def test_cae_budget_trains_each_variant_and_seed_and_scores_the_test_set(tmp_path_factory, tmp_path):
    from benchmarks.cae_budget import main

    data, run = cached_tiny_run(tmp_path_factory.getbasetemp())
    out = tmp_path / "budget.json"
    variant = json.dumps({"cae": {"latent_filters": 4}})
    assert main(["--run", str(run), "--data", str(data), "--steps", "2", "--seeds", "0", "1",
                 "--variant", f"thin={variant}", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["results"]
    assert [(r["variant"], r["seed"]) for r in rows] == [("base", 0), ("base", 1), ("thin", 0), ("thin", 1)]
    assert rows[2]["set"] == {"cae": {"latent_filters": 4}}
    for row in rows:
        assert 0.0 <= row["zmax_auroc"] <= 1.0 and row["val_mse"] > 0 and row["seconds"] > 0
        assert set(row["per_kind"]) == {"contamination", "pit", "scratch", "thread"}


def test_cae_budget_rejects_a_malformed_variant(tmp_path_factory, capsys):
    from benchmarks.cae_budget import main

    data, run = cached_tiny_run(tmp_path_factory.getbasetemp())
    with pytest.raises(SystemExit):
        main(["--run", str(run), "--data", str(data), "--variant", "nojson"])
    assert "expected NAME=JSON" in capsys.readouterr().err
