"""Per-example regularisers driven by hyperparameter values, and the conversion of a registered architecture
into a self-tuning one (dropout inserted at named modules, input regularisation in front, linear and
convolution layers turned into best-response layers) without rewriting the architecture."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from sweeplab_modules.stn._hyper import HyperContext
from sweeplab_modules.stn._layers import BEST_RESPONSE_TYPES, StructuredBestResponse
from sweeplab_modules.stn._settings import OnlineHyperparameter

__all__ = ["InputRegularisation", "OutputDropout", "best_response_layers", "cutout", "regularised"]


def _per_example(value: Tensor, like: Tensor) -> Tensor:
    """(batch or 1,) values shaped to broadcast over ``like`` (batch first)."""
    return value.to(like.dtype).view(-1, *[1] * (like.ndim - 1))


def _dropout(x: Tensor, rate: Tensor) -> Tensor:
    """Inverted dropout with a rate per example."""
    keep = 1 - _per_example(rate, x)
    return x * (torch.rand_like(x) < keep) / keep


def cutout(images: Tensor, lengths: Tensor) -> Tensor:
    """Zero a square of side ``lengths[i]`` pixels (clipped at the border) at a random centre of image ``i``
    (DeVries & Taylor 2017); images (batch, channels, height, width), normalised so that zero is the mean."""
    batch, _, height, width = images.shape
    lengths = lengths.expand(batch).to(images.device)
    top = torch.randint(height, (batch,), device=images.device) - torch.div(lengths, 2, rounding_mode="floor")
    left = torch.randint(width, (batch,), device=images.device) - torch.div(lengths, 2, rounding_mode="floor")
    rows = torch.arange(height, device=images.device)[None]
    columns = torch.arange(width, device=images.device)[None]
    inside_rows = (rows >= top[:, None]) & (rows < (top + lengths)[:, None])
    inside_columns = (columns >= left[:, None]) & (columns < (left + lengths)[:, None])
    hole = inside_rows[:, :, None] & inside_columns[:, None, :]
    return images * (~hole[:, None]).to(images.dtype)


class OutputDropout(nn.Module):
    """``module`` followed by dropout at the rate the context holds for hyperparameter ``name``."""

    def __init__(self, module: nn.Module, name: str, context: HyperContext) -> None:
        super().__init__()
        self.module = module
        self.name = name
        self.context = context

    def forward(self, x: Tensor) -> Tensor:
        y = self.module(x)
        rate = self.context.value(self.name, y.shape[0])
        return _dropout(y, rate) if self.training and rate is not None else y


class InputRegularisation(nn.Module):
    """In training mode, the input-side hyperparameters (dropout of entries, Gaussian noise, cutout) applied to
    the inputs with the context's per-example values, then ``model``."""

    def __init__(
        self, model: nn.Module, hyperparameters: Mapping[str, OnlineHyperparameter], context: HyperContext
    ) -> None:
        super().__init__()
        self.model = model
        self.applications = {name: h.apply for name, h in hyperparameters.items() if h.apply != "dropout"}
        self.context = context

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            for name, application in self.applications.items():
                value = self.context.value(name, x.shape[0])
                if value is None:
                    continue
                if application == "input_dropout":
                    x = _dropout(x, value)
                elif application == "input_noise":
                    x = x + _per_example(value, x) * torch.randn_like(x)
                else:
                    if x.ndim != 4:
                        raise ValueError(f"{name}: cutout needs images (batch, channels, h, w), got {tuple(x.shape)}")
                    x = cutout(x, value.long())
        return self.model(x)


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attribute = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, attribute, module)


def regularised(
    model: nn.Module, hyperparameters: Mapping[str, OnlineHyperparameter], context: HyperContext
) -> InputRegularisation:
    """``model`` with dropout after the modules each dropout hyperparameter names (glob patterns on
    ``named_modules``; the outermost match) and the input-side hyperparameters in front; the values come from
    ``context``."""
    names = [name for name, _ in model.named_modules() if name]
    for hyper_name, hyperparameter in hyperparameters.items():
        for pattern in hyperparameter.at:
            matched = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
            # ``*`` also matches dots: drop after the outermost matched module only, not again inside it.
            matched = [name for name in matched if not any(name.startswith(f"{outer}.") for outer in matched)]
            if not matched:
                shown = ", ".join(names[:40]) + (" ..." if len(names) > 40 else "")
                raise ValueError(f"hyperparameters.{hyper_name}.at: {pattern!r} matches no module (modules: {shown})")
            for name in matched:
                _replace(model, name, OutputDropout(model.get_submodule(name), hyper_name, context))
    return InputRegularisation(model, hyperparameters, context)


def best_response_layers(model: nn.Module, n_inputs: int, context: HyperContext) -> int:
    """Turn every linear and convolution layer of ``model`` into a StructuredBestResponse, in place; returns how
    many were converted. Other layers (spectral convolutions, normalisation) are kept as they are."""
    found = [
        (name, module)
        for name, module in model.named_modules()
        if type(module) in BEST_RESPONSE_TYPES and not isinstance(module, nn.modules.lazy.LazyModuleMixin)
    ]
    for name, module in found:
        _replace(model, name, StructuredBestResponse(module, n_inputs, context))
    if not found:
        raise ValueError(f"{type(model).__name__} has no linear or convolution layer to turn into a best response")
    return len(found)
