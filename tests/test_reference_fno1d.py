"""The independent FNO-1D of the Burgers reproduction (bench/_reference_fno1d.py): it trains, maps a grid of any
size to the same grid, and shares no code with sweeplab."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from _reference_fno1d import (  # noqa: E402
    ReferenceFNO1d,
    ReferenceSettings,
    UnitGaussianNormalizer,
    parameter_count,
    train_reference,
)


def _smoothing_pairs(samples: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """a: a few random Fourier modes; y: a shifted, damped copy (a linear operator an FNO can learn)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.arange(size) / size
    k = torch.arange(1, 4)
    coefficients = torch.randn(samples, 2, 3, generator=generator)
    angles = 2 * math.pi * k[:, None] * x
    a = (coefficients[:, 0, :, None] * torch.cos(angles) + coefficients[:, 1, :, None] * torch.sin(angles)).sum(1)
    y = 0.01 * torch.roll(a, size // 8, dims=-1) + 0.003
    return a, y


def test_the_module_imports_neither_sweeplab_nor_its_modules():
    tree = ast.parse((BENCH / "_reference_fno1d.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and not any(name.split(".")[0].startswith("sweeplab") for name in imported)


@pytest.mark.parametrize("size", [32, 48, 64])
def test_the_output_has_the_input_grid(size):
    model = ReferenceFNO1d(width=8, modes=4, n_layers=2, projection_width=16, activation="gelu")
    assert model(torch.randn(3, size)).shape == (3, size)


def test_the_parameter_count_is_the_papers_for_the_burgers_network():
    # lift 2*64+64, 4 x (64*64*16 complex + 64*64+64), 64*128+128, 128+1: 549,569 (sweeplab's fno1d paper preset)
    assert parameter_count(ReferenceSettings()) == 192 + 4 * (2 * 64 * 64 * 16 + 64 * 64 + 64) + 8320 + 129 == 549_569


def test_the_normaliser_statistics_carry_to_nested_grids_exactly():
    samples = torch.randn(50, 16) * torch.linspace(1, 2, 16) + torch.linspace(0, 1, 16)
    normaliser = UnitGaussianNormalizer.fit(samples)
    assert torch.allclose(normaliser.at(8).mean, normaliser.mean[::2])
    assert torch.allclose(normaliser.at(32).std[::2], normaliser.std)
    assert torch.allclose(normaliser.decode(normaliser.encode(samples)), samples, atol=1e-6)


def test_training_lowers_the_error_at_every_test_resolution():
    x_train, y_train = _smoothing_pairs(40, 32, seed=0)
    x_val, y_val = _smoothing_pairs(10, 32, seed=1)
    tests = {size: _smoothing_pairs(10, size, seed=2) for size in (32, 64)}
    settings = ReferenceSettings(
        width=8, modes=4, n_layers=2, projection_width=16, epochs=30, batch_size=10, lr=1e-2, step_size=10, seed=0
    )
    epochs = []
    result = train_reference(x_train, y_train, x_val, y_val, tests, settings, epochs.append)
    assert [record["epoch"] for record in epochs] == list(range(1, 31)) and result.history == epochs
    assert result.val_rel_l2 < 0.3 * epochs[0]["val_rel_l2"]
    assert set(result.test_rel_l2) == {32, 64}
    assert all(error < 0.3 * epochs[0]["val_rel_l2"] for error in result.test_rel_l2.values())
    assert result.n_params == parameter_count(settings)
