"""The muP coordinate check (Tensor Programs V, section 7): mean |output| of every layer after a few Adam steps, at
widths 8 .. 128, under the standard parametrization and under muP (base width 8), for FNO-2D and an MLP. Flat rows
under muP, rows that grow with the width under the standard parametrization (tests/test_mup.py asserts both).

    python bench/coord_check.py [--widths 8 16 32 64 128] [--steps 3] [--lr 0.01] [--seeds 8]
"""

from __future__ import annotations

import argparse


def main() -> None:
    import torch

    from sweeplab_modules.coord_check import COORD_CHECK_MODELS, coordinate_check, growth_ratios

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"mean |output| after {args.steps} Adam steps of lr {args.lr:g}, {args.seeds} seeds, base width 8")
    print("| model | parametrization | layer | " + " | ".join(f"width {w}" for w in args.widths) + " | ratio |")
    print("| --- " * (len(args.widths) + 4) + "|")
    for model in COORD_CHECK_MODELS:
        for parametrization in ("standard", "mup"):
            scales = coordinate_check(
                model, parametrization, args.widths, steps=args.steps, lr=args.lr, seeds=range(args.seeds)
            )
            ratios = growth_ratios(scales)
            for layer, values in scales.items():
                cells = " | ".join(f"{v:.3f}" for v in values)
                print(f"| {model} | {parametrization} | {layer} | {cells} | {ratios[layer]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
