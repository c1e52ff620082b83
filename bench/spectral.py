"""Time one FNO2d training step with the reference layers against the fast ones; print a markdown table.

A step is forward, relative-L2 loss, backward and an Adam update on random data. "reference" is the FNO with
the original formulations of SpectralConv (rfftn, one complex einsum per frequency block into a zero-filled
spectrum, irfftn) and PointwiseLinear (nn.Linear on channels moved last), from
``tests/test_spectral_speedup.py``; "fast" is the current code. Both start from the same parameters and
alternate step by step, so load on a shared machine hits them alike; the table reports medians.

Run from the repository root: ``python bench/spectral.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sweeplab_modules.losses import relative_l2
from sweeplab_modules.operators.fno import FNO2d

# The reference layers live with the tests that check the fast ones against them: one copy for both.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_spectral_speedup import with_reference_layers  # noqa: E402


@dataclass(frozen=True)
class Setting:
    grid: int
    width: int
    modes: int
    padding: int

    def __str__(self) -> str:
        return f"{self.grid}x{self.grid}, width {self.width}, modes {self.modes}, padding {self.padding}"


# The Darcy settings: the sweep's coarse 29 x 29 grid, and the paper's 85 x 85 configuration.
SETTINGS = (Setting(grid=29, width=16, modes=8, padding=5), Setting(grid=85, width=32, modes=12, padding=9))


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0]
        + " Settings: "
        + "; ".join(str(s) for s in SETTINGS)
        + ". Each at every batch size and device.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    default_devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    parser.add_argument("--devices", nargs="+", default=default_devices, help="devices to time on")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[20, 200], help="batch sizes")
    parser.add_argument("--repeats", type=int, default=3, help="at most this many timed steps per variant")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=20.0,
        help="stop repeating a row once it has taken this long (it still gets one timed step per variant)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per variant (CUDA: 2 more)")
    parser.add_argument("--threads", type=int, default=None, help="CPU intra-op threads; None leaves torch's choice")
    parser.add_argument(
        "--tf32", action="store_true", help="allow TF32 in float32 matrix products on CUDA (both variants)"
    )
    return parser.parse_args()


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        relative_l2(model(x), y).backward()
        optimizer.step()

    return step


def timed(step: Callable[[], None], device: torch.device) -> float:
    """Seconds for one call; CUDA work is waited for on both sides."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def compare(setting: Setting, batch: int, device: torch.device, arguments: argparse.Namespace) -> dict[str, float]:
    """Median seconds per training step of each variant, the variants alternating step by step."""
    torch.manual_seed(0)
    fast = FNO2d(1, 1, width=setting.width, modes=setting.modes, padding=setting.padding)
    reference = with_reference_layers(fast)
    x = torch.randn(batch, 1, setting.grid, setting.grid, device=device)
    y = torch.randn(batch, 1, setting.grid, setting.grid, device=device)
    steps = {"reference": make_step(reference.to(device), x, y), "fast": make_step(fast.to(device), x, y)}
    # On CUDA, cuBLAS / cuFFT plans and the caching allocator settle in the first steps.
    warmup = arguments.warmup + (2 if device.type == "cuda" else 0)
    times: dict[str, list[float]] = {name: [] for name in steps}
    start = time.perf_counter()
    for iteration in range(warmup + arguments.repeats):
        for name, step in steps.items():
            seconds = timed(step, device)
            if iteration >= warmup:
                times[name].append(seconds)
        if times["fast"] and time.perf_counter() - start > arguments.max_seconds:
            break
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    arguments = parse_arguments()
    if arguments.threads is not None:
        torch.set_num_threads(arguments.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads", end="")
    if torch.cuda.is_available():
        print(f", {torch.cuda.get_device_name()}, TF32 matmul {'on' if arguments.tf32 else 'off'}", end="")
    print("\n")
    columns = ["setting", "device", "batch", "reference ms/step", "fast ms/step"]
    columns += ["reference samples/s", "fast samples/s", "speedup"]
    print("| " + " | ".join(columns) + " |")
    print("|---|---|" + "---:|" * (len(columns) - 2))
    for device_name in arguments.devices:
        device = torch.device(device_name)
        # Process-wide: only the CUDA rows get TF32, and only when asked for.
        use_tf32 = arguments.tf32 and device.type == "cuda"
        torch.set_float32_matmul_precision("high" if use_tf32 else "highest")
        for setting in SETTINGS:
            for batch in arguments.batch_sizes:
                seconds = compare(setting, batch, device, arguments)
                reference, fast = seconds["reference"], seconds["fast"]
                print(
                    f"| {setting} | {device.type} | {batch} | {reference * 1e3:.1f} | {fast * 1e3:.1f} "
                    f"| {batch / reference:.1f} | {batch / fast:.1f} | {reference / fast:.2f}x |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
