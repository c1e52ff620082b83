"""Structured best-response layers (MacKay et al. 2019, section 4.1): a layer's output is its elementary output
plus a response whose weights and bias are gated, per output unit, by a linear function of the hyperparameters:
``y = (W_e x + b_e) + (V_w lambda) * (W_h x) + (V_b lambda) * b_h``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sweeplab_modules.layers.pointwise import PointwiseLinear
from sweeplab_modules.stn._hyper import HyperContext

__all__ = ["BEST_RESPONSE_TYPES", "StructuredBestResponse"]

# Layers that have a best-response version; PointwiseLinear (channels first) before its base nn.Linear.
BEST_RESPONSE_TYPES = (PointwiseLinear, nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _response_of(layer: nn.Module) -> nn.Module:
    """A freshly initialised copy of ``layer``'s map without bias (the bias is gated separately)."""
    if isinstance(layer, PointwiseLinear):
        return PointwiseLinear(layer.in_features, layer.out_features, bias=False)
    if isinstance(layer, nn.Linear):
        return nn.Linear(layer.in_features, layer.out_features, bias=False)
    if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return type(layer)(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,  # type: ignore[arg-type]
            stride=layer.stride,  # type: ignore[arg-type]
            padding=layer.padding,  # type: ignore[arg-type]
            dilation=layer.dilation,  # type: ignore[arg-type]
            groups=layer.groups,
            bias=False,
            padding_mode=layer.padding_mode,
        )
    raise TypeError(f"no best-response version of {type(layer).__name__}")


class StructuredBestResponse(nn.Module):
    """Wraps a linear or convolution layer (kept as ``elementary``) and adds its hyperparameter-gated response.

    The gates read ``n_inputs`` values per example: the hyperparameters, or their MIP encoding (twice as many;
    see ``HyperContext``). They start at zero, so a converted model computes what the original does until
    training moves them.
    Units are the last dimension for ``nn.Linear`` and the channel dimension (1) for convolutions and pointwise
    layers.
    """

    def __init__(self, elementary: nn.Module, n_inputs: int, context: HyperContext) -> None:
        super().__init__()
        self.elementary = elementary
        self.response = _response_of(elementary)
        units: int = elementary.weight.shape[0]  # type: ignore[union-attr,index,assignment]
        self.response_bias = nn.Parameter(torch.empty(units).uniform_(-(units**-0.5), units**-0.5))
        self.weight_gate = nn.Linear(n_inputs, units, bias=False)
        self.bias_gate = nn.Linear(n_inputs, units, bias=False)
        nn.init.zeros_(self.weight_gate.weight)
        nn.init.zeros_(self.bias_gate.weight)
        self.unit_dim = -1 if isinstance(elementary, nn.Linear) and not isinstance(elementary, PointwiseLinear) else 1
        self.context = context

    def _broadcast(self, gate: Tensor, ndim: int) -> Tensor:
        ones = [1] * (ndim - 2)
        if self.unit_dim == 1:
            return gate.view(gate.shape[0], gate.shape[1], *ones)
        return gate.view(gate.shape[0], *ones, gate.shape[1])

    def forward(self, x: Tensor) -> Tensor:
        hyper = self.context.hypernet_input(x.shape[0] if x.ndim > 1 else 1)
        weight_gate = self._broadcast(self.weight_gate(hyper), x.ndim)
        bias_gate = self._broadcast(self.bias_gate(hyper) * self.response_bias, x.ndim)
        return self.elementary(x) + weight_gate * self.response(x) + bias_gate
