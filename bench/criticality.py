"""Preactivation variance against depth at and off criticality (The Principles of Deep Learning Theory, ch. 5):
the kernel K_l of deep MLPs initialised with W ~ N(0, C_W / fan_in), b ~ N(0, C_b), averaged over initialisations.

For each activation, C_W at its critical value times 0.8, 1 and 1.25 (C_b critical); ReLU and tanh on unit-variance
inputs, GELU and SiLU with the first layer's variance at K*, K* / 2 and 2 K* (their critical point is half-stable).

    python bench/criticality.py [--depth 64] [--width 512] [--networks 16]
"""

from __future__ import annotations

import argparse


def main() -> None:
    from sweeplab_modules.layers.criticality import CRITICAL_VARIANCES, preactivation_variances

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=64)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--networks", type=int, default=16)
    args = parser.parse_args()
    shown = [layer for layer in (1, 2, 4, 8, 16, 32, 64, 128, 256) if layer <= args.depth]
    print("| activation | C_W | C_b | " + " | ".join(f"K_{layer}" for layer in shown) + " |")
    print("| --- " * (3 + len(shown)) + "|")
    for activation, (bias_variance, weight_variance, fixed_point) in CRITICAL_VARIANCES.items():
        settings = [(factor * weight_variance, 1.0) for factor in (0.8, 1.0, 1.25)]
        if fixed_point:  # GELU, SiLU: start at, below and above K* (first layer K_1 = C_b + C_W * input variance)
            settings = [
                (weight_variance, (k - bias_variance) / weight_variance) for k in (fixed_point / 2, fixed_point)
            ]
            settings += [(weight_variance, (2 * fixed_point - bias_variance) / weight_variance)]
        for weight, input_variance in settings:
            kernel = preactivation_variances(
                activation,
                weight,
                bias_variance,
                depth=args.depth,
                width=args.width,
                networks=args.networks,
                input_variance=input_variance,
            )
            critical = "**" if weight == weight_variance else ""
            row = [f"{activation}", f"{critical}{weight:.4g}{critical}", f"{bias_variance:.4g}"]
            row += [f"{kernel[layer - 1]:.3g}" for layer in shown]
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
