"""The machine a measurement ran on (CPU model, threads, device, torch and Python versions): recorded
in every row of the controlled timing (actlab.timing), and printed by the benchmarks and the book."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    """The fields that describe where `device` runs: threads, device type, device_name (the GPU's
    name, else the CPU's), cpu, torch and python versions."""
    import torch  # noqa: PLC0415  (here: cpu_name, the article's appendix, starts without torch's ~3 s)

    cpu = cpu_name()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu
    return {
        "threads": torch.get_num_threads(),
        "device": device.type,
        "device_name": name,
        "cpu": cpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
