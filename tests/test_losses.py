import math

import pytest
import torch

from sweeplab_modules.losses import relative_h1, relative_l2


def test_equal_tensors_give_zero() -> None:
    target = torch.randn(3, 2, 8, 8)
    assert relative_l2(target.clone(), target).item() == 0.0


def test_zero_prediction_gives_one() -> None:
    target = torch.randn(4, 1, 16)
    assert relative_l2(torch.zeros_like(target), target).item() == pytest.approx(1.0, rel=1e-6)


def test_invariant_to_common_rescaling() -> None:
    generator = torch.Generator().manual_seed(0)
    prediction, target = torch.randn(2, 5, 3, 7, generator=generator)
    reference = relative_l2(prediction, target).item()
    for scale in (1e-3, 7.0, 1e4):
        assert relative_l2(scale * prediction, scale * target).item() == pytest.approx(reference, rel=1e-5)


def test_averages_per_sample_ratios_not_pooled_norms() -> None:
    # Sample 0: prediction 2 * target, ratio 1. Sample 1: exact, ratio 0, but with a 100x larger norm, so a
    # ratio of pooled norms would be about 0.01 instead of the per-sample mean 0.5.
    target = torch.stack([torch.ones(1, 4, 4), 100 * torch.ones(1, 4, 4)])
    prediction = torch.stack([2 * torch.ones(1, 4, 4), 100 * torch.ones(1, 4, 4)])
    assert relative_l2(prediction, target).item() == pytest.approx(0.5, rel=1e-6)


def test_norm_runs_over_all_non_batch_dims() -> None:
    target = torch.zeros(1, 2, 3)
    target[0, 1, 2] = 2.0
    prediction = target.clone()
    prediction[0, 0, 0] = 1.0  # error sits in another channel than the target's mass
    assert relative_l2(prediction, target).item() == pytest.approx(0.5, rel=1e-6)


def test_low_precision_inputs_give_float32() -> None:
    target = torch.randn(2, 8, dtype=torch.bfloat16)
    assert relative_l2(target * 0.5, target).dtype == torch.float32


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        relative_l2(torch.zeros(2, 1, 4), torch.zeros(2, 4))


def _unit_grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    axis = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    return torch.meshgrid(axis, axis, indexing="ij")


def test_h1_known_answer_for_a_constant_error() -> None:
    # u = sin(pi x) sin(pi y): ||u||^2 = 1/4, ||grad u||^2 = pi^2 / 2; a constant error c has H1 norm |c|.
    x, y = _unit_grid(201)
    target = (torch.sin(math.pi * x) * torch.sin(math.pi * y))[None, None]
    expected = 0.1 / math.sqrt(0.25 + math.pi**2 / 2)
    assert relative_h1(target + 0.1, target).item() == pytest.approx(expected, rel=2e-2)


def test_h1_weighs_a_rough_error_more_than_l2_does() -> None:
    # Error eps sin(3 pi x) sin(3 pi y) on u = sin(pi x) sin(pi y): rel L2 = eps, rel H1 = eps
    # sqrt((1 + 18 pi^2) / (1 + 2 pi^2)), about 2.93 eps.
    x, y = _unit_grid(201)
    target = (torch.sin(math.pi * x) * torch.sin(math.pi * y))[None, None]
    error = 0.01 * (torch.sin(3 * math.pi * x) * torch.sin(3 * math.pi * y))[None, None]
    expected = 0.01 * math.sqrt((1 + 18 * math.pi**2) / (1 + 2 * math.pi**2))
    assert relative_l2(target + error, target).item() == pytest.approx(0.01, rel=2e-2)
    assert relative_h1(target + error, target).item() == pytest.approx(expected, rel=2e-2)


def test_h1_is_the_same_at_every_resolution() -> None:
    values = []
    for n in (33, 65, 257):
        grid = torch.linspace(0.0, 1.0, n)[None, None]
        values.append(relative_h1(torch.sin(2 * math.pi * grid) + grid**2, torch.sin(2 * math.pi * grid)).item())
    assert max(values) / min(values) < 1.01


def test_h1_of_a_batch_is_the_mean_of_per_sample_ratios() -> None:
    generator = torch.Generator().manual_seed(0)
    prediction, target = torch.randn(2, 3, 2, 9, 9, generator=generator)
    each = [relative_h1(prediction[i : i + 1], target[i : i + 1]).item() for i in range(3)]
    assert relative_h1(prediction, target).item() == pytest.approx(sum(each) / 3, rel=1e-6)
    assert relative_h1(target.clone(), target).item() == 0.0
    assert relative_h1(5.0 * prediction, 5.0 * target).item() == pytest.approx(sum(each) / 3, rel=1e-5)


def test_h1_is_float32_under_low_precision_and_checks_shapes() -> None:
    target = torch.randn(2, 1, 8, 8, dtype=torch.bfloat16)
    assert relative_h1(target * 0.5, target).dtype == torch.float32
    with pytest.raises(ValueError, match="differ in shape"):
        relative_h1(torch.zeros(2, 1, 4), torch.zeros(2, 1, 5))
    for shape in ((2, 4), (2, 1, 4, 1)):
        with pytest.raises(ValueError, match="grid dim"):
            relative_h1(torch.ones(shape), torch.ones(shape))
