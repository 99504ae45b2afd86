"""Same config + seed => bit-identical metrics and curves on CPU, for every activation."""

import json
from pathlib import Path

import pandas as pd
import pytest

from actlab import activations
from actlab.train import run

# Wall-clock fields differ between runs by nature; everything else must match to the bit.
TIMING = {"train_seconds", "seconds_per_epoch", "run_dir", "seconds"}
TABLES = ("metrics.csv", "dead_units.csv", "grad_flow.csv")


def _outputs(run_dir):
    summary = {k: v for k, v in json.loads((run_dir / "summary.json").read_text()).items() if k not in TIMING}
    tables = {t: pd.read_csv(run_dir / t).drop(columns=list(TIMING), errors="ignore") for t in TABLES}
    return summary, tables


@pytest.mark.slow
@pytest.mark.parametrize("name", activations.NAMES)
def test_bit_identical_reruns(compose, tmp_path, name):
    overrides = (f"activation={name}", "seed=7", "trainer.max_epochs=2", "probes.grad_flow.every_n_steps=5")
    run(compose(*overrides, f"run_dir={tmp_path / 'a'}"))
    run(compose(*overrides, f"run_dir={tmp_path / 'b'}"))
    (sa, ta), (sb, tb) = _outputs(tmp_path / "a"), _outputs(tmp_path / "b")
    assert json.dumps(sa, sort_keys=True) == json.dumps(sb, sort_keys=True)  # NaN-safe, exact floats
    for t in TABLES:
        assert len(ta[t]) > 0, t
        pd.testing.assert_frame_equal(ta[t], tb[t], check_exact=True)


@pytest.mark.numerics
def test_vectorised_job_reruns_are_bit_identical(compose, tmp_path):
    """A vectorised job (several activations x seeds as one batched model) gives the same bits twice."""
    from actlab.train import run_seeds

    overrides = (
        "activations=[prelu,gelu]",
        "seeds=[0,1]",
        "trainer.max_epochs=2",
        "trainer.threads=1",
        "trainer.progress=quiet",
        "probes.grad_flow.every_n_steps=5",
    )
    a = run_seeds(compose(*overrides, f"run_dir={tmp_path / 'a'}/${{activation.name}}/seed${{seed}}"))
    b = run_seeds(compose(*overrides, f"run_dir={tmp_path / 'b'}/${{activation.name}}/seed${{seed}}"))
    assert [s["vectorized"]["k"] for s in a] == [4] * 4
    for sa, sb in zip(a, b):
        (oa, ta), (ob, tb) = _outputs(Path(sa["run_dir"])), _outputs(Path(sb["run_dir"]))
        oa.pop("vectorized"), ob.pop("vectorized")  # holds the job's wall time
        assert json.dumps(oa, sort_keys=True) == json.dumps(ob, sort_keys=True)
        for t in TABLES:
            assert len(ta[t]) > 0, t
            pd.testing.assert_frame_equal(ta[t], tb[t], check_exact=True)
