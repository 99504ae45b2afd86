"""Same config + seed => bit-identical metrics and curves on CPU, for every activation."""
import json

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
