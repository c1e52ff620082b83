"""Activations of named layers, for comparing layers and models (e.g. with CKA)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["layer_activations"]


@torch.no_grad()
def layer_activations(model: nn.Module, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
    """The outputs of ``model``'s submodules named ``layers`` (as in ``named_modules``) on ``x``, one flattened
    (samples, features) matrix each; computed in eval mode, the model's mode restored after."""
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown:
        raise KeyError(f"no layers {unknown} in {type(model).__name__} (known: {', '.join(n for n in modules if n)})")
    captured: dict[str, Tensor] = {}
    handles = [
        modules[name].register_forward_hook(
            lambda _module, _inputs, output, name=name: captured.__setitem__(name, output.flatten(start_dim=1))
        )
        for name in layers
    ]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return {name: captured[name] for name in layers}
