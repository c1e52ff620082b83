"""Maximal Update Parametrization (muP) for Adam: Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen,
Gao, "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer", arXiv 2203.03466,
Table 3 (the rules for Adam), written relative to a base width as in its Table 8.

A model of ``width`` is built as the standard model would be, then rescaled by the width ratio ``r = width /
base_width`` according to each weight's role, so that at ``width == base_width`` muP and the standard
parametrization are the same network, and hyperparameters tuned at the base (proxy) width transfer to wider models:

============  ================================  =====================  ========================================
role          which weights                     initialisation         Adam learning rate
============  ================================  =====================  ========================================
input         finite fan-in, width fan-out;     standard; a bias of a  ``lr``
              every bias and gain               width-fan-in layer
                                                times ``sqrt(r)``
hidden        width fan-in and fan-out          standard (std ~        ``lr / r``
                                                ``1 / sqrt(fan_in)``)
readout       width fan-in, finite fan-out      standard std times     ``lr / r``
                                                ``1 / sqrt(r)`` (var
                                                ``~ 1 / fan_in^2``)
============  ================================  =====================  ========================================

The spectral weights of a Fourier layer (``SpectralConv``: one complex ``width x width`` matrix per retained
frequency) are hidden weights: the number of retained modes does not grow with the width, so every frequency's
matrix mixes ``width`` channels into ``width`` channels exactly like a pointwise hidden layer, with fan-in the
input channels. Their Adam rate is therefore ``lr / r``. Their initialisation is the FNO reference code's, uniform
in ``[0, 1 / (in * out))``: not zero-mean, so its mean acts on the channel mean coherently (a sum of ``in`` terms
of size ``1 / (in * out)``) and vanishes like ``1 / out`` with width in the standard parametrization. Under muP it
is multiplied by ``r``, to ``[0, 1 / (in * out_base))``: the coherent part then stays of order one at every width
(like the Theta(1) contribution a muP hidden layer makes) and the fluctuating part is ``O(1 / sqrt(in))`` smaller
than a ``1 / sqrt(fan_in)`` init, which the muP limit allows (a smaller hidden init changes no Adam update scale).

A model that supports muP calls ``parametrize`` (``apply_mup`` under muP) at the end of its constructor, which
rescales the initial weights and records each weight's learning-rate multiplier in ``model.learning_rate_scales``
(parameter name -> multiplier; names absent mean 1); the Lightning task builds its optimiser's parameter groups
from it (``learning_rate_scales``, ``SweepTask.parameter_groups``). These rules are Adam's (and AdamW's): plain SGD
needs others (Table 3), so a study refuses ``parametrization: mup`` with ``optimizer: sgd``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from sweeplab_modules.layers.spectral import SpectralConv
from sweeplab_modules.layers.validation import checked_choice
from sweeplab_modules.parametrization import PARAMETRIZATIONS, parametrization_problem

__all__ = ["apply_mup", "learning_rate_scales", "parametrize", "parametrize_mlp"]


def parametrize(
    model: nn.Module,
    parametrization: str,
    width: int,
    base_width: int | None,
    *,
    hidden: Iterable[nn.Module],
    readout: Iterable[nn.Module],
) -> None:
    """A model's ``parametrization`` option (``standard``: nothing to do; ``mup``: ``apply_mup``), checked with the
    rules ``sweeplab validate`` applies (``sweeplab_modules.parametrization``)."""
    checked_choice("parametrization", parametrization, PARAMETRIZATIONS)
    problem = parametrization_problem({"parametrization": parametrization, "base_width": base_width})
    if problem is not None:
        raise ValueError(f"{problem[0]}: {problem[1]}")
    if parametrization == "mup":
        assert base_width is not None
        apply_mup(model, width, base_width, hidden=hidden, readout=readout)


def parametrize_mlp(model: nn.Module, net: nn.Module, parametrization: str, width: int, base_width: int | None) -> None:
    """``parametrize`` for an MLP ``net`` of ``model`` whose hidden layers are ``width`` wide: its first linear layer
    is the input layer, the ones between hidden, the last one (to a finite number of outputs) the readout."""
    linear = [layer for layer in net.modules() if isinstance(layer, nn.Linear)]
    readout = linear[-1:] if len(linear) > 1 else []
    parametrize(model, parametrization, width, base_width, hidden=linear[1:-1], readout=readout)


@torch.no_grad()
def apply_mup(
    model: nn.Module, width: int, base_width: int, *, hidden: Iterable[nn.Module], readout: Iterable[nn.Module]
) -> None:
    """Rescale the layers of ``model`` (built with the standard initialisation) to muP at ``width`` against
    ``base_width``.

    ``hidden`` and ``readout`` are the model's layers of those roles (linear or spectral, with a ``weight``); every
    other parameter is an input weight or a bias (unchanged, learning rate ``lr``)."""
    ratio = width / base_width
    scaled: dict[int, float] = {}
    for layer, weight_factor in [(layer, 1.0) for layer in hidden] + [
        (layer, 1 / math.sqrt(ratio)) for layer in readout
    ]:
        if isinstance(layer, SpectralConv):
            weight_factor *= ratio
        layer.weight.mul_(weight_factor)
        scaled[id(layer.weight)] = 1 / ratio
        if getattr(layer, "bias", None) is not None:
            # A bias has fan-in 1: its init must not shrink with the width (PyTorch's ~ 1 / sqrt(fan_in) does).
            layer.bias.mul_(math.sqrt(ratio))
    # Added to what earlier calls recorded: a model with several widths (DeepONet's branch and trunk) calls it per net.
    model.learning_rate_scales = learning_rate_scales(model) | {
        name: scaled[id(parameter)] for name, parameter in model.named_parameters() if id(parameter) in scaled
    }


def learning_rate_scales(model: nn.Module) -> dict[str, float]:
    """The multipliers of the learning rate per parameter name (relative to ``model``) that ``apply_mup`` recorded
    on ``model`` or any module inside it, so that a wrapper (the regularisation one) keeps the rates of the model it
    wraps (empty: all 1)."""
    scales: dict[str, float] = {}
    for prefix, module in model.named_modules():
        for name, scale in getattr(module, "learning_rate_scales", {}).items():
            scales[f"{prefix}.{name}" if prefix else name] = scale
    return scales
