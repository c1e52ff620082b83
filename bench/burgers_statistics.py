"""Our Burgers set against the FNO recipe's generation script: input and output statistics, the GRF's spectrum.

The authors' script (``GRF1`` in their data_generation/burgers) draws u0 = sum_k alpha_k cos(2 pi k x) + beta_k
sin(2 pi k x) with alpha_k, beta_k ~ N(0, 2 sigma^2 ((2 pi k)^2 + tau^2)^(-gamma)), the paper's sigma = 25, tau = 5,
gamma = 2 (covariance 625 (-Laplace + 25)^(-2)). So the pointwise variance of u0 is sum_k 2 sigma^2 ((2 pi k)^2 +
tau^2)^(-gamma), and E(alpha_k^2 + beta_k^2) decays like k^(-2 gamma). Under the heat part alone (nu = 0.1), mode k
is damped by exp(-nu (2 pi k)^2 T): a prediction of u(., 1)'s size, and (as a prediction of u(., 1) itself) of how
much of the map the nonlinear term makes.
Prints a markdown table of measured against expected values on the training split of the study's data set.

    python bench/burgers_statistics.py [--data n_train=1000 ...]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import yaml

from sweeplab.data import load_dataset
from sweeplab.datagen.burgers import BurgersParams

STUDY = Path(__file__).resolve().parents[1] / "studies" / "burgers_operators_paper.yaml"


def mode_power(fields: np.ndarray) -> np.ndarray:
    """E(alpha_k^2 + beta_k^2) over the samples, k = 0 .. n/2, from fields sampled on x_j = j / n."""
    coefficients = np.fft.rfft(fields, axis=-1) * (2.0 / fields.shape[-1])
    return (np.abs(coefficients) ** 2).mean(axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", default=[], metavar="KEY=VALUE", help="override data parameters")
    args = parser.parse_args()
    spec = yaml.safe_load(STUDY.read_text())
    params = spec["data"]["params"] | {k: yaml.safe_load(v) for k, _, v in (d.partition("=") for d in args.data)}
    data = load_dataset("burgers", params)
    recipe = BurgersParams.model_validate(params)
    a, u = data.x_train[:, 0].astype(np.float64), data.y_train[:, 0].astype(np.float64)
    size = a.shape[-1]
    k = np.arange(1, recipe.fine_resolution // 3 + 1)
    variance_k = 2 * recipe.sigma**2 * ((2 * np.pi * k) ** 2 + recipe.tau**2) ** (-recipe.gamma)
    damping = np.exp(-2 * recipe.nu * (2 * np.pi * k) ** 2 * recipe.final_time)
    measured_a, measured_u = mode_power(a), mode_power(u)
    print(f"data set burgers-{data.identity}, {len(a)} training samples at {size} points")
    print("\n| quantity | measured | recipe / script |\n| --- | --- | --- |")
    print(f"| mean of a0 | {a.mean():+.4f} | 0 |")
    print(f"| std of a0 | {a.std():.4f} | {math.sqrt(variance_k.sum()):.4f} |")
    print(f"| mean of u(1) | {u.mean():+.5f} | 0 |")
    print(f"| std of u(1) | {u.std():.5f} | {math.sqrt((variance_k * damping).sum()):.5f} (heat part only) |")
    for mode in (1, 2, 4, 8, 16, 32, 64):
        expected = 2 * variance_k[mode - 1]
        print(f"| a0 power at k = {mode}, E(alpha^2 + beta^2) | {measured_a[mode]:.3e} | {expected:.3e} |")
    fit = slice(8, 65)
    slope = np.polyfit(np.log(np.arange(size // 2 + 1)[fit]), np.log(measured_a[fit]), 1)[0]
    theory = np.polyfit(np.log(k[7:64]), np.log(variance_k[7:64]), 1)[0]
    print(
        f"| a0 spectrum slope, k = 8..64 (log-log) | {slope:.2f} | {theory:.2f} (-2 gamma = {-2 * recipe.gamma:g} "
        f"asymptotically) |"
    )
    print(
        f"| share of u(1)'s power outside k = 1 | {1 - measured_u[1] / measured_u[1:].sum():.2e} | "
        f"{1 - (variance_k * damping)[0] / (variance_k * damping).sum():.2e} (heat part only) |"
    )
    # How far u(., 1) is from the heat equation's solution: the part of the map the nonlinear term makes.
    a_test, u_test = data.x_test[:, 0].astype(np.float64), data.y_test[:, 0].astype(np.float64)
    heat_damping = np.exp(-recipe.nu * (2 * np.pi * np.arange(size // 2 + 1)) ** 2 * recipe.final_time)
    heat = np.fft.irfft(np.fft.rfft(a_test, axis=-1) * heat_damping, n=size, axis=-1)
    heat_error = np.linalg.norm(heat - u_test, axis=-1) / np.linalg.norm(u_test, axis=-1)
    print(f"| test rel. L2 of the heat part alone as the prediction | {heat_error.mean():.4f} | - |")


if __name__ == "__main__":
    main()
