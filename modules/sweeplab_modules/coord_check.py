"""The coordinate check of the muP papers (Tensor Programs V, section 7 and Fig. 5): train models of several widths
for a few Adam steps from the same data and record the mean absolute value of each layer's output (its typical
"coordinate"). Under muP every layer's scale stays flat across widths; under the standard parametrization the
layers after an update grow with the width (Adam's update of a hidden weight has entries of size ``lr``, so it
moves a layer's output by ``~ lr * fan_in``). A grown curve is a bug in the parametrization (or a missing layer
in it), which is why the test runs it.

The optimiser is the one a study's trial builds (``SweepTask.make_optimizer``: the model's muP learning-rate groups).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from sweeplab_modules.layers.branch_trunk import FullyConnected
from sweeplab_modules.layers.mup import parametrize_mlp
from sweeplab_modules.operators.fno import FNO2d
from sweeplab_modules.tasks.base import SweepTask
from sweeplab_modules.training import TrainingConfig

__all__ = ["COORD_CHECK_MODELS", "coordinate_check", "growth_ratios"]


def _fno2d(width: int, parametrization: str, base_width: int) -> tuple[nn.Module, dict[str, nn.Module]]:
    model = FNO2d(1, 1, width=width, modes=4, padding=0, parametrization=parametrization, base_width=base_width)
    layers = {"lift": model.lift}
    layers.update({f"fourier{i}": layer for i, layer in enumerate(model.fourier_layers)})
    layers.update({"readout": model.projection[0], "output": model.projection})
    return model, layers


def _mlp(width: int, parametrization: str, base_width: int) -> tuple[nn.Module, dict[str, nn.Module]]:
    model = FullyConnected([_MLP_INPUTS, width, width, width, 1], "relu", activate_last=False)
    parametrize_mlp(model, model, parametrization, width, base_width)
    linear = [layer for layer in model if isinstance(layer, nn.Linear)]
    return model, {f"linear{i}": layer for i, layer in enumerate(linear)}


_MLP_INPUTS = 16

# name -> (width, parametrization, base_width) -> (model, the layers whose outputs are recorded, in order)
COORD_CHECK_MODELS: dict[str, Callable[[int, str, int], tuple[nn.Module, dict[str, nn.Module]]]] = {
    "fno2d": _fno2d,
    "mlp": _mlp,
}


def _batch(model_name: str, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    if model_name == "mlp":
        return torch.randn(32, _MLP_INPUTS, generator=generator), torch.randn(32, 1, generator=generator)
    return torch.randn(8, 1, 16, 16, generator=generator), torch.randn(8, 1, 16, 16, generator=generator)


def coordinate_check(
    model_name: str,
    parametrization: str,
    widths: Sequence[int],
    *,
    base_width: int = 8,
    steps: int = 3,
    lr: float = 1e-2,
    seeds: Sequence[int] = (0, 1),
) -> dict[str, list[float]]:
    """``{layer: [mean |output| at each width]}`` after ``steps`` Adam steps of ``lr`` on one fixed batch (mean
    squared error against a random target), averaged over ``seeds``."""
    build = COORD_CHECK_MODELS[model_name]
    scales: dict[str, list[float]] = {}
    for width in widths:
        totals: dict[str, float] = {}
        for seed in seeds:
            x, target = _batch(model_name, torch.Generator().manual_seed(seed))
            torch.manual_seed(seed)
            model, layers = build(width, parametrization, base_width)
            optimizer = SweepTask(model, TrainingConfig(optimizer="adam", lr=lr)).make_optimizer()
            for _ in range(steps):
                optimizer.zero_grad()
                nn.functional.mse_loss(model(x), target).backward()
                optimizer.step()
            outputs: dict[str, Tensor] = {}
            hooks = [
                layer.register_forward_hook(lambda _m, _i, out, name=name, store=outputs: store.__setitem__(name, out))
                for name, layer in layers.items()
            ]
            with torch.no_grad():
                model(x)
            for hook in hooks:
                hook.remove()
            for name in layers:
                totals[name] = totals.get(name, 0.0) + float(outputs[name].abs().mean()) / len(seeds)
        for name, value in totals.items():
            scales.setdefault(name, []).append(value)
    return scales


def growth_ratios(scales: dict[str, list[float]]) -> dict[str, float]:
    """Each layer's scale at the widest width over its scale at the narrowest."""
    return {name: values[-1] / values[0] for name, values in scales.items()}
