"""Latent Spectral Model (Wu, Hu, Luo, Wang, Long; "Solving High-Dimensional PDEs with Latent Spectral
Models", ICML 2023, arXiv 2301.12664; code thuml/Latent-Spectral-Models).

Append the normalised grid coordinates to the input channels, lift pointwise to ``width``, zero-pad the grid
to a multiple of ``patch_size * 2 ** (n_scales - 1)``, and run a U-Net (``sweeplab_modules.layers.unet``)
whose skip at every scale, and the coarsest map, first pass through a neural spectral block; crop, and
project pointwise ``width -> projection_width -> GELU -> out``.

Neural spectral block, on a ``(batch, channels, h, w)`` map split into ``patch_size^2`` patches, each patch
independently:

1. latent encoder: ``n_tokens`` learnable latent tokens attend (``n_heads`` heads) to the patch's pixels,
   keys and values from a 1x1 convolution; residual on the tokens;
2. latent transition: each token coordinate ``z`` is expanded in the basis ``sin(k pi z), cos(k pi z)``
   with ``k = i / n_basis``, ``i = 0 .. n_basis - 1``, and mapped back by learnable per-channel weights,
   ``z <- z + sum_k w_c,k basis_k(z)``: a spectral approximation of the latent operator;
3. latent decoder: every pixel attends to the tokens, queries from a 1x1 convolution; residual on the
   pixels.

As in the authors' code the attention logits are not scaled by ``1 / sqrt(head dim)`` and the latent tokens
and transition weights start uniform in ``[0, 1 / channels)``.

Published setting: width 64, 5 scales, 4 tokens, 12 basis frequencies, 8 heads, projection 128, batch norm;
Darcy 85^2 with 6x6 patches (grid padded to 96), Navier-Stokes 64^2 with 4x4 patches; Adam lr 5e-4, weight
decay 1e-4, batch 20, 501 epochs, StepLR(100, 0.5), relative L2 loss. Reported relative L2: Darcy 0.0065,
Navier-Stokes nu = 1e-5 0.1535.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sweeplab_modules.layers import PointwiseLinear, PointwiseMLP
from sweeplab_modules.layers.unet import NORMALIZATIONS, LiftedUNet, unet_channels
from sweeplab_modules.layers.validation import checked_choice, checked_size

__all__ = ["LSM2d", "NeuralSpectralBlock"]


class NeuralSpectralBlock(nn.Module):
    """Latent encoder, sin/cos latent transition and latent decoder on every ``patch_size^2`` patch.

    Takes and returns ``(batch, channels, h, w)`` with ``h`` and ``w`` multiples of ``patch_size``.
    """

    def __init__(self, channels: int, patch_size: int, n_tokens: int, n_basis: int, n_heads: int) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels {channels} must be divisible by n_heads {n_heads}")
        self.patch_size = patch_size
        self.n_heads = n_heads
        self.latent_tokens = nn.Parameter(torch.rand(n_heads, n_tokens, channels // n_heads) / channels)
        self.encoder_keys_values = PointwiseLinear(channels, 2 * channels)
        self.decoder_queries = PointwiseLinear(channels, channels)
        self.register_buffer("frequencies", math.pi * torch.arange(n_basis) / n_basis, persistent=False)
        self.transition_weights = nn.Parameter(torch.rand(channels, 2 * n_basis) / channels)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        p = self.patch_size
        patches = (
            x.view(batch, channels, height // p, p, width // p, p)
            .permute(0, 2, 4, 1, 3, 5)
            .reshape(-1, channels, p * p)
        )  # (batch * patches, channels, pixels)
        tokens = self._encode(patches)
        tokens = tokens + self._transition(tokens)
        patches = patches + self._decode(patches, tokens)
        return (
            patches.view(batch, height // p, width // p, channels, p, p)
            .permute(0, 3, 1, 4, 2, 5)
            .reshape(batch, channels, height, width)
        )

    def _heads(self, x: Tensor) -> Tensor:
        """``(n, channels, length)`` -> ``(n, heads, length, channels / heads)``."""
        n, channels, length = x.shape
        return x.view(n, self.n_heads, channels // self.n_heads, length).transpose(-1, -2)

    def _merge_heads(self, x: Tensor) -> Tensor:
        """Inverse of ``_heads``."""
        n, heads, length, head_channels = x.shape
        return x.transpose(-1, -2).reshape(n, heads * head_channels, length)

    def _encode(self, patches: Tensor) -> Tensor:
        """Latent tokens ``(n, channels, tokens)``: the learnable tokens attend to the patch's pixels."""
        keys, values = self.encoder_keys_values(patches).chunk(2, dim=1)
        queries = self.latent_tokens.expand(patches.shape[0], -1, -1, -1)
        attended = F.scaled_dot_product_attention(queries, self._heads(keys), self._heads(values), scale=1.0)
        return self._merge_heads(attended + queries)

    def _transition(self, tokens: Tensor) -> Tensor:
        phases = tokens[..., None] * self.frequencies  # (n, channels, tokens, basis)
        basis = torch.cat([phases.sin(), phases.cos()], dim=-1)
        return torch.einsum("nctb,cb->nct", basis, self.transition_weights)

    def _decode(self, patches: Tensor, tokens: Tensor) -> Tensor:
        """Every pixel attends to the latent tokens: ``(n, channels, pixels)``."""
        queries = self._heads(self.decoder_queries(patches))
        tokens = self._heads(tokens)
        return self._merge_heads(F.scaled_dot_product_attention(queries, tokens, tokens, scale=1.0))


class LSM2d(LiftedUNet):
    """``(batch, in_channels, h, w) -> (batch, out_channels, h, w)`` at any ``h, w`` (padded inside).

    Defaults are the paper's Darcy configuration.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 64,
        n_scales: int = 5,
        patch_size: int = 6,
        n_tokens: int = 4,
        n_basis: int = 12,
        n_heads: int = 8,
        projection_width: int = 128,
        normalization: Literal["batch", "instance", "none"] = "batch",
    ) -> None:
        in_channels = checked_size("in_channels", in_channels, minimum=1)
        out_channels = checked_size("out_channels", out_channels, minimum=1)
        width = checked_size("width", width, minimum=1)
        n_scales = checked_size("n_scales", n_scales, minimum=1)
        patch_size = checked_size("patch_size", patch_size, minimum=1)
        n_tokens = checked_size("n_tokens", n_tokens, minimum=1)
        n_basis = checked_size("n_basis", n_basis, minimum=1)
        n_heads = checked_size("n_heads", n_heads, minimum=1)
        projection_width = checked_size("projection_width", projection_width, minimum=1)
        if width % n_heads:
            raise ValueError(f"width {width} must be divisible by n_heads {n_heads}")
        super().__init__(
            in_channels,
            lift=PointwiseLinear(in_channels + 2, width),
            projection=PointwiseMLP(width, projection_width, out_channels),
            width=width,
            n_scales=n_scales,
            normalization=checked_choice("normalization", normalization, NORMALIZATIONS),
            # Every scale must split into whole patches.
            grid_multiple=patch_size * 2 ** (n_scales - 1),
            skip_blocks=nn.ModuleList(
                NeuralSpectralBlock(channels, patch_size, n_tokens, n_basis, n_heads)
                for channels in unet_channels(width, n_scales)
            ),
        )
