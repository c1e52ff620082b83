"""Zero-shot super-resolution: our FNO-2D against neuraloperator's ``FNO``, trained side by side on Darcy 29 x 29
and tested at 29 and 57 x 57 (the same test samples, subsampled from the same fine solve).

Both models get the same data (our Darcy generator), the same scalar normalisation, the same initial seed, the same
batches in the same order, Adam lr 1e-3 (weight decay 1e-4) halved every 5 epochs, 20 epochs, relative L2 loss:
only the architectures differ. Width 32, projection 128, 4 Fourier layers, domain padding of the same total extent
at the training grid. The reference library lives in its own environment, never a dependency of the project:

    python -m venv /tmp/nop --system-site-packages
    /tmp/nop/bin/pip install --no-deps 'neuraloperator==2.0.*'
    /tmp/nop/bin/pip install tensorly tensorly-torch opt-einsum zencfg configmypy ruamel-yaml
    PYTHONPATH=platform:modules /tmp/nop/bin/python bench/zero_shot.py --seeds 0 1 2

Variants (``--variants``): ``ours`` (our FNO2d, padded as many points at 29 as the library: ``padding_fraction``
= those points / 28 spacings, unless ``--ours-padding-fraction``; its trained weights are also evaluated at 57 with
the fixed paddings ``PADDING_PROBES``, which isolates the padding); ``nop-12`` (the library with
``n_modes=(12, 12)``, its own meaning: 12 frequencies in all per leading dimension, ``-6 .. 5``, and 7 along the
last) and ``nop-24`` (``n_modes=(24, 24)``: ``-12 .. 11`` and 13 along the last, the frequencies our ``modes=12``
keeps, ``-12 .. 11`` and 12). ``--padding-fraction`` is the library's ``domain_padding`` times 2 (it pads
``round(domain_padding * n)`` points on each side).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch import nn

DATA = {
    "n_train": 1000,
    "n_val": 1,
    "n_test": 200,
    "resolution": 29,
    # 168 = 6 * 28 = 3 * 56: 29 and 57 are both subsamples of the 169 x 169 solve, ends included.
    "fine_resolution": 169,
    "test_resolutions": [29, 57],
}
WIDTH, MODES, PROJECTION, LAYERS = 32, 12, 128, 4
VARIANTS = ("ours", "nop-12", "nop-24")
# Our trained model evaluated again at 57 with these paddings (points, one side), 6 at 29: 11 = round(0.2 * 57), what
# ``padding_fraction=0.2`` padded before the fix; 12 = the library's 6 + 6, twice the training grid's points as the
# grid has twice the spacings; 13 = the same period, (57 + 13) / 56 spacings as (29 + 6) / 28.
PADDING_PROBES = (11, 12, 13)


def build(variant: str, padding_fraction: float) -> nn.Module:
    if variant.startswith("ours"):
        from sweeplab_modules.operators.fno import FNO2d

        return FNO2d(
            1, 1, width=WIDTH, modes=MODES, projection_width=PROJECTION, n_layers=LAYERS,
            padding=0, padding_fraction=padding_fraction, activation="gelu",
        )  # fmt: skip
    from neuralop.models import FNO

    n_modes = int(variant.removeprefix("nop-"))
    return FNO(
        n_modes=(n_modes, n_modes), in_channels=1, out_channels=1, hidden_channels=WIDTH, n_layers=LAYERS,
        projection_channel_ratio=PROJECTION / WIDTH, domain_padding=padding_fraction / 2,
    )  # fmt: skip


def relative_l2(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per sample ``||prediction - target|| / ||target||``."""
    difference = (prediction - target).flatten(1).norm(dim=1)
    return difference / target.flatten(1).norm(dim=1)


def train_and_test(
    variant: str, seed: int, data: dict[str, np.ndarray], epochs: int, padding_fraction: float
) -> dict[str, float]:
    as_tensor = torch.from_numpy
    x_train, y_train = as_tensor(data["x_train"]), as_tensor(data["y_train"])
    # Scalar normalisation (one mean and deviation per field): the same at every resolution.
    x_mean, x_std, y_mean, y_std = x_train.mean(), x_train.std(), y_train.mean(), y_train.std()
    torch.manual_seed(seed)
    model = build(variant, padding_fraction)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
    batches = torch.Generator().manual_seed(seed)  # the same batches for every variant
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(len(x_train), generator=batches).split(20):
            prediction = model((x_train[index] - x_mean) / x_std) * y_std + y_mean
            loss = relative_l2(prediction, y_train[index]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    seconds = time.perf_counter() - started
    model.eval()
    errors = {}
    with torch.no_grad():
        for size in DATA["test_resolutions"]:
            x, y = as_tensor(data[f"x_test_{size}"]), as_tensor(data[f"y_test_{size}"])
            prediction = model((x - x_mean) / x_std) * y_std + y_mean
            errors[f"test_rel_l2_{size}"] = relative_l2(prediction, y).mean().item()
        if variant == "ours":
            x, y = as_tensor(data["x_test_57"]), as_tensor(data["y_test_57"])
            for points in PADDING_PROBES:
                model.domain_padding = lambda grid, points=points: [points] * len(grid)  # type: ignore[method-assign]
                prediction = model((x - x_mean) / x_std) * y_std + y_mean
                errors[f"test_rel_l2_57_padding_{points}"] = relative_l2(prediction, y).mean().item()
    n_params = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    return {**errors, "seconds_per_epoch": seconds / epochs, "n_params": n_params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--padding-fraction", type=float, default=0.2, help="the library's total padding fraction")
    parser.add_argument("--ours-padding-fraction", type=float, help="ours only (default: --padding-fraction)")
    parser.add_argument("--n-train", type=int, default=250, help="the first N of the set's 1000 training samples")
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)

    from sweeplab.data import load_dataset

    loaded = load_dataset("darcy", DATA)
    data = {"x_train": loaded.x_train[: arguments.n_train], "y_train": loaded.y_train[: arguments.n_train]}
    for size, (x, y) in loaded.test_at_resolution.items():
        data[f"x_test_{size}"], data[f"y_test_{size}"] = x, y
    print(f"darcy data {loaded.identity} {json.dumps(DATA)}, training on the first {arguments.n_train}", flush=True)
    results: dict[str, list[dict[str, float]]] = {}
    for seed in arguments.seeds:
        for variant in arguments.variants:
            fraction = arguments.padding_fraction
            if variant == "ours":
                library_points = 2 * round(arguments.padding_fraction / 2 * DATA["resolution"])
                fraction = library_points / (DATA["resolution"] - 1)
                if arguments.ours_padding_fraction is not None:
                    fraction = arguments.ours_padding_fraction
            result = train_and_test(variant, seed, data, arguments.epochs, fraction)
            results.setdefault(variant, []).append(result)
            print(json.dumps({"variant": variant, "seed": seed, **result}), flush=True)
    print("\n| variant | params | test_rel_l2_29 (median; per seed) | test_rel_l2_57 (median; per seed) | s/epoch |")
    print("| --- | --- | --- | --- | --- |")
    for variant, runs in results.items():
        cells = []
        for size in DATA["test_resolutions"]:
            values = [run[f"test_rel_l2_{size}"] for run in runs]
            cells.append(f"{statistics.median(values):.4f}; " + ", ".join(f"{v:.4f}" for v in values))
        speed = statistics.median(run["seconds_per_epoch"] for run in runs)
        print(f"| {variant} | {int(runs[0]['n_params'])} | {cells[0]} | {cells[1]} | {speed:.2f} |")


if __name__ == "__main__":
    main()
