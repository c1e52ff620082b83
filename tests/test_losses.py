import pytest
import torch

from sweeplab_modules.losses import relative_l2


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
