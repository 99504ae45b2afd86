"""Controlled timing of one training epoch per activation, for the "smooth activations cost more
compute" claim.

    python -m actlab.timing --out results/stats/timing.csv [--activations relu,gelu,...]
        [--config data=digits model=mlp ...] [--depth 2 --width 128 --in-features 64 --classes 10
        --batch-size 64 --samples 1078] [--repeats 31 --warmup 2 --threads 1 --device cpu]

Why not the training runs' own seconds per epoch (results/stats/compute.csv): they are taken while
other jobs load the machine, with no control over what runs beside them, and include validation, the
probes and Lightning; a difference there can be the machine's load at that moment, not the activation. Here, in ONE process:

- Model: the sweep's model, built by `actlab.models.build` (so the same layers and init as training):
  the model and data settings come from the Hydra config (``--config``: the same overrides as the
  sweep's main experiment; default: the project's default config), each overridable by a flag.
  Data: random standard-normal inputs of the dataset's input shape and random labels (the dataset's
  classes), ``samples`` of them (default: the training split's size), held as tensors on the device.
- The measurement (`actlab.epochtimes`): one *epoch* = a pass over the samples in mini-batches of
  ``batch_size`` (forward, loss, backward, optimiser step, as in training, without validation, probes
  or Lightning), every activation with its own model and optimiser, in interleaved round-robin rounds
  (``warmup`` rounds discarded, then ``repeats``), so load drift of the machine hits every activation
  alike; beside it, the activation module alone (forward + backward, ``inner`` calls per measurement).
  torch.set_num_threads(``threads``) (default 1).

Statistics (per activation; n = ``repeats``): the median and a distribution-free 95% confidence
interval of the median from order statistics (`actlab.intervals.median_ci`; n >= 6 needed); the ratio
to the baseline is the median of the per-round ratios t_act / t_baseline, with the same interval.
The machine (`actlab.machine`: CPU model from /proc/cpuinfo, threads, torch version, device) goes into
every row.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import pandas as pd
import torch
from omegaconf import OmegaConf

from actlab import activations, atomic, config, data, errors
from actlab.epochtimes import measure, summarise
from actlab.errors import ConfigError, Parser, UsageError
from actlab.intervals import median_ci_ranks
from actlab.machine import machine

CI_METHOD = "order-statistic interval of the median (distribution-free, binomial)"
COLUMNS = [
    "activation",
    "family",
    "baseline",
    "s_per_epoch",
    "ci_low",
    "ci_high",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "act_s",
    "act_ci_low",
    "act_ci_high",
    "act_ratio",
    "act_ratio_ci_low",
    "act_ratio_ci_high",
    "mean_s_per_epoch",
    "min_s_per_epoch",
    "max_s_per_epoch",
    "repeats",
    "warmup",
    "coverage",
    "ci_method",
    "dataset",
    "config",
    "model",
    "depth",
    "width",
    "in_features",
    "classes",
    "batch_size",
    "samples",
    "steps_per_epoch",
    "optimizer",
    "inner",
    "threads",
    "device",
    "device_name",
    "cpu",
    "torch",
    "python",
]


# -----------------------------------------------------------------------------
# the setting: the sweep's model and data shape


def compose(overrides: list[str]):
    """The project's Hydra config with `overrides` (model, data and optimiser are all this reads)."""
    try:
        return config.compose(overrides)
    except ConfigError as e:
        raise UsageError(f"--config {' '.join(overrides)}: {e}") from None


def setting(a: argparse.Namespace) -> dict:
    """Model config, input shape, classes, task, batch size, samples and optimiser: the flags where
    given, else the composed config (the dataset is loaded only when its shape or size is needed)."""

    cfg = compose(a.config)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    for key in ("depth", "width"):
        if getattr(a, key) is not None:
            model_cfg[key] = getattr(a, key)
    task = "classification"
    in_shape = (a.in_features,) if a.in_features is not None else None
    classes, samples = a.classes, a.samples
    if in_shape is None or classes is None or samples is None:
        try:
            sp = data.load(cfg.data)
        except (OSError, data.DataError) as e:
            raise UsageError(
                f"cannot load {cfg.data.name} for its shape ({e}); give --in-features, --classes and --samples"
            ) from None
        task = sp.task
        in_shape = in_shape or sp.in_shape
        classes = classes if classes is not None else sp.num_outputs
        samples = samples if samples is not None else len(sp.y_train)
    if model_cfg["name"] == "cnn" and len(in_shape) not in (1, 2, 3):
        raise UsageError(f"model cnn needs images (C, H, W) or sequences (C, L) / (L,); got shape {in_shape}")
    opt = OmegaConf.to_container(cfg.optimizer, resolve=True)
    return {
        "dataset": str(cfg.data.name),
        "config": " ".join(a.config),
        "model": model_cfg,
        "in_shape": tuple(int(d) for d in in_shape),
        "classes": int(classes),
        "task": task,
        "samples": int(samples),
        "batch_size": int(a.batch_size if a.batch_size is not None else cfg.data.batch_size),
        "optimizer": opt,
    }


# -----------------------------------------------------------------------------
# command line


def _names(s: str) -> list[str]:
    return [v.strip() for v in s.replace(" ", ",").split(",") if v.strip()]


def parse(argv: list[str]) -> argparse.Namespace:
    ap = Parser(
        prog="python -m actlab.timing",
        description="Seconds per training epoch per activation, interleaved, in one process.",
    )
    ap.add_argument("--out", type=Path, required=True, help="the CSV to write (atomically)")
    ap.add_argument(
        "--activations",
        type=_names,
        default=list(activations.NAMES),
        help="comma-separated (default: every registered activation)",
    )
    ap.add_argument("--baseline", default="relu", help="the ratios' denominator; must be among --activations")
    ap.add_argument(
        "--config",
        nargs="*",
        default=[],
        metavar="OVERRIDE",
        help="Hydra overrides of the setting, e.g. data=digits model=mlp model.width=32",
    )
    ap.add_argument("--depth", type=int, help="hidden layers (default: the config's model.depth)")
    ap.add_argument("--width", type=int, help="units per hidden layer (default: model.width)")
    ap.add_argument("--in-features", type=int, help="input size (default: the dataset's)")
    ap.add_argument("--classes", type=int, help="outputs (default: the dataset's classes)")
    ap.add_argument("--batch-size", type=int, help="default: the config's data.batch_size")
    ap.add_argument("--samples", type=int, help="samples per epoch (default: the training split's size)")
    ap.add_argument("--repeats", type=int, default=31, help="measured rounds (>= 6, for a 95%% CI of the median)")
    ap.add_argument("--warmup", type=int, default=2, help="rounds run first and discarded")
    ap.add_argument("--inner", type=int, default=20, help="activation calls per micro-benchmark measurement")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if not a.activations:
        raise UsageError("--activations must not be empty")
    for name in a.activations:
        activations.spec(name)  # UnknownActivation names the valid ones
    a.activations = list(dict.fromkeys(a.activations))
    if a.baseline not in a.activations:
        raise UsageError(f"--baseline {a.baseline!r} is not among --activations {','.join(a.activations)}")
    checks = [
        (a.repeats >= 6, f"--repeats must be >= 6 (a 95% CI of the median needs 6), got {a.repeats}"),
        (a.warmup >= 0, f"--warmup must be >= 0, got {a.warmup}"),
        (a.inner >= 1, f"--inner must be >= 1, got {a.inner}"),
        (a.threads >= 1, f"--threads must be >= 1, got {a.threads}"),
    ]
    for key in ("depth", "width", "in_features", "classes", "batch_size", "samples"):
        v = getattr(a, key)
        checks.append((v is None or v >= 1, f"--{key.replace('_', '-')} must be >= 1, got {v}"))
    for ok, msg in checks:
        if not ok:
            raise UsageError(msg)
    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(a.device)
    except RuntimeError:
        raise UsageError(f"--device {a.device!r}: expected cpu, cuda, cuda:N or auto") from None
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {a.device!r}: expected cpu, cuda, cuda:N or auto")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {a.device}: CUDA is not available here")
    a.device = dev
    try:  # fail before the measurement, not after it
        a.out.parent.mkdir(parents=True, exist_ok=True)
        probe = a.out.parent / f".{a.out.name}.write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--out {str(a.out)!r} is not writable: {e.strerror}") from None
    return a


def run(a: argparse.Namespace) -> pd.DataFrame:
    torch.set_num_threads(a.threads)
    s = setting(a)
    if s["batch_size"] > s["samples"]:
        raise UsageError(f"--batch-size {s['batch_size']} exceeds --samples {s['samples']}")
    m = s["model"]
    print(
        f"timing {len(a.activations)} activations: {m['name']} depth {m['depth']} width {m['width']}, "
        f"input {s['in_shape']}, {s['classes']} outputs, {s['samples']} samples in batches of {s['batch_size']}, "
        f"{a.warmup} warm-up + {a.repeats} rounds, {a.threads} thread(s), {a.device}",
        flush=True,
    )
    t0 = time.perf_counter()
    per_epoch, per_call = measure(a.activations, s, a.repeats, a.warmup, a.inner, a.device, a.seed)
    out = summarise(per_epoch, per_call, a.baseline)
    mach = machine(a.device)
    lo_hi = median_ci_ranks(a.repeats)
    out = out.assign(
        repeats=a.repeats,
        warmup=a.warmup,
        coverage=lo_hi[2],
        ci_method=CI_METHOD,
        dataset=s["dataset"],
        config=s["config"],
        model=m["name"],
        depth=m["depth"],
        width=m["width"],
        in_features=math.prod(s["in_shape"]),
        classes=s["classes"],
        batch_size=s["batch_size"],
        samples=s["samples"],
        steps_per_epoch=math.ceil(s["samples"] / s["batch_size"]),
        optimizer=s["optimizer"]["name"],
        inner=a.inner,
        **mach,
    )[COLUMNS]
    atomic.write_csv(a.out, out)
    for r in out.itertuples():
        print(
            f"{r.activation:>11}: {1e3 * r.s_per_epoch:8.2f} ms/epoch [{1e3 * r.ci_low:.2f}, {1e3 * r.ci_high:.2f}]"
            f"  x{r.ratio:.3f} [{r.ratio_ci_low:.3f}, {r.ratio_ci_high:.3f}]"
            f"  alone {1e6 * r.act_s:7.1f} us x{r.act_ratio:.2f}"
            f" [{r.act_ratio_ci_low:.2f}, {r.act_ratio_ci_high:.2f}]",
            flush=True,
        )
    print(f"{a.out}: {len(out)} activations in {time.perf_counter() - t0:.1f}s on {mach['device_name']}", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    errors.main(lambda args: run(parse(args)), argv)


if __name__ == "__main__":
    main()
