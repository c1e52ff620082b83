"""Loss and metric functions: pure functions of tensors, no module state."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["relative_l2"]


def relative_l2(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of ``||prediction - target||_2 / ||target||_2``, norms over all non-batch dims.

    The FNO paper's loss and test metric (its ``LpLoss`` with p = 2, relative, size-averaged). Invariant to a
    common rescaling of prediction and target; computed in float32 at least so it is safe under autocast. A
    sample whose target is identically zero gives inf or nan, as the metric is undefined there.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    dtype = torch.promote_types(torch.promote_types(prediction.dtype, target.dtype), torch.float32)
    prediction = prediction.to(dtype).flatten(start_dim=1)
    target = target.to(dtype).flatten(start_dim=1)
    error_norm = torch.linalg.vector_norm(prediction - target, dim=1)
    target_norm = torch.linalg.vector_norm(target, dim=1)
    return (error_norm / target_norm).mean()
