"""Poincaré ResNet (van Spengler, Berkhout, Mettes, ICCV 2023): a residual network whose layers act on the
Poincaré ball of curvature ``-c``.

Between layers the activations are tangent vectors at the origin (a plain tensor; ReLU and pooling act there);
every hyperbolic layer maps them onto the ball (``expmap0``), applies its operation and maps back (``logmap0``).
The ball's operations (exponential and logarithmic maps, Möbius addition, parallel transport, the gyromidpoint,
all with their boundary clamps) are geoopt's ``PoincareBall``; the layers are written here from the paper:
the HNN++ Poincaré fully connected layer (Shimizu et al., ICLR 2021) with the paper's identity initialisation,
the Poincaré convolution (beta-concatenation of the patch, then that layer), the Poincaré midpoint batch norm with a
learned mean on the ball (a manifold parameter: Riemannian optimisation) and the Möbius residual connection."""

from __future__ import annotations

import math
from collections.abc import Sequence

import geoopt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "PoincareBatchNorm2d",
    "PoincareConv2d",
    "PoincareLinear",
    "PoincareResNetEncoder",
    "PoincareResidualBlock",
]

_SINH_LIMIT = 50.0
"""Largest ``sqrt(c) v`` fed to sinh: beyond it the point is at the float32 boundary anyway, and sinh overflows
near 89."""
_MAX_TANH = 1.0 - 4e-3
"""Largest ``sqrt(c) ||x||`` of a point mapped onto the ball: geoopt's float32 projection margin."""


class PoincareLinear(nn.Module):
    """HNN++'s Poincaré fully connected layer, ball points (..., in) -> ball points (..., out).

    Output coordinate k is built from the signed distance-like ``v_k(x) = 2 ||z_k|| / sqrt(c) asinh(lambda_x
    <sqrt(c) x, z_k / ||z_k||> cosh(2 sqrt(c) r_k) - (lambda_x - 1) sinh(2 sqrt(c) r_k))`` to the k-th Poincaré
    hyperplane (``lambda_x = 2 / (1 - c ||x||^2)``); ``w = sinh(sqrt(c) v) / sqrt(c)`` and the output is
    ``w / (1 + sqrt(1 + c ||w||^2))``. ``v`` itself serves as logits (Poincaré multinomial logistic regression).
    Weights start at half the rectangular identity (the paper's init: the 1/2 cancels the factor 2, so norms are
    kept through depth), biases at 0."""

    def __init__(self, ball: geoopt.PoincareBall, in_features: int, out_features: int) -> None:
        super().__init__()
        self.ball = ball
        self.weight = nn.Parameter(0.5 * torch.eye(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def hyperplane_distances(self, x: Tensor) -> Tensor:
        return self.distances(x @ self.weight, x.square().sum(dim=-1, keepdim=True))

    def distances(self, x_dot_weight: Tensor, x_squared_norm: Tensor) -> Tensor:
        """``v(x)`` from ``x @ weight`` (..., out) and ``||x||^2`` (..., 1): all that the layer needs of ``x``."""
        sqrt_c = self.ball.c.sqrt()
        z_norm = self.weight.norm(dim=0).clamp_min(1e-15)
        lambda_x = 2.0 / (1.0 - self.ball.c * x_squared_norm).clamp_min(1e-15)
        two_r = 2.0 * sqrt_c * self.bias
        inner = sqrt_c * x_dot_weight / z_norm
        argument = lambda_x * inner * torch.cosh(two_r) - (lambda_x - 1) * torch.sinh(two_r)
        return 2.0 * z_norm / sqrt_c * torch.asinh(argument)

    def to_ball(self, distances: Tensor) -> Tensor:
        sqrt_c = self.ball.c.sqrt()
        w = torch.sinh((sqrt_c * distances).clamp(-_SINH_LIMIT, _SINH_LIMIT)) / sqrt_c
        return self.ball.projx(w / (1.0 + torch.sqrt(1.0 + self.ball.c * w.square().sum(dim=-1, keepdim=True))))

    def forward(self, x: Tensor) -> Tensor:
        return self.to_ball(self.hyperplane_distances(x))


def _log_beta_half(a: float) -> float:
    """``log B(a, 1/2)``."""
    return math.lgamma(a) + math.lgamma(0.5) - math.lgamma(a + 0.5)


class PoincareConv2d(nn.Module):
    """Poincaré convolution, tangent maps (B, C, H, W) -> (B, out, H', W'): each patch's ``C * k^2`` tangent
    coordinates are beta-concatenated (scaled by ``B(C k^2 / 2, 1/2) / B(C / 2, 1/2)``, so that the concatenation
    keeps the expected norm of one pixel's vector), mapped onto the ball (``x = expmap0(v)``) and through a
    Poincaré linear layer of ``C k^2`` inputs, then mapped back (``logmap0``).

    Computed as convolutions: ``expmap0`` only rescales ``v`` (by ``tanh(sqrt(c) |v|) / (sqrt(c) |v|)``), so
    ``x @ weight`` is that factor times an ordinary convolution of the map with the weight, and ``|v|^2`` a
    convolution of the per-pixel squared norms with a box of ones: the patches are never materialised."""

    def __init__(
        self, ball: geoopt.PoincareBall, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1
    ) -> None:
        super().__init__()
        self.ball, self.kernel_size, self.stride = ball, kernel_size, stride
        self.in_channels, self.out_channels = in_channels, out_channels
        patch = in_channels * kernel_size**2
        self.beta_scale = math.exp(_log_beta_half(patch / 2) - _log_beta_half(in_channels / 2))
        self.linear = PoincareLinear(ball, patch, out_channels)
        self.register_buffer("box", torch.ones(1, 1, kernel_size, kernel_size), persistent=False)

    def forward(self, u: Tensor) -> Tensor:
        k, padding = self.kernel_size, self.kernel_size // 2
        v = u * self.beta_scale
        kernel = self.linear.weight.T.reshape(self.out_channels, self.in_channels, k, k)  # unfold's (C, kh, kw) order
        v_dot_weight = F.conv2d(v, kernel, stride=self.stride, padding=padding)
        v_norm = F.conv2d(v.square().sum(dim=1, keepdim=True), self.box, stride=self.stride, padding=padding)
        v_norm = v_norm.clamp_min(1e-15).sqrt()
        sqrt_c = self.ball.c.sqrt()
        x_norm = torch.tanh(sqrt_c * v_norm).clamp_max(_MAX_TANH) / sqrt_c  # |expmap0(v)|, inside the ball
        x_dot_weight = (x_norm / v_norm) * v_dot_weight
        distances = self.linear.distances(x_dot_weight.permute(0, 2, 3, 1), x_norm.square().permute(0, 2, 3, 1))
        return self.ball.logmap0(self.linear.to_ball(distances)).permute(0, 3, 1, 2)


class PoincareBatchNorm2d(nn.Module):
    """Poincaré midpoint batch norm over the channel vectors of every pixel (points of the ball B^C).

    Training: the batch mean is the gyromidpoint of the points (the closed-form Einstein midpoint mapped to the
    ball, the paper's replacement for the iterative Fréchet mean), the variance the mean squared distance to it;
    each point's tangent vector at the mean is parallel-transported to the learned mean (a point on the ball,
    optimised on the manifold), rescaled by ``sqrt(learned variance / (batch variance + eps))`` and mapped back.
    Evaluation uses running statistics (mean moved along the geodesic towards each batch mean by ``momentum``),
    which the authors' code registers but never updates."""

    def __init__(self, ball: geoopt.PoincareBall, channels: int, momentum: float = 0.1, eps: float = 1e-6) -> None:
        super().__init__()
        self.ball, self.momentum, self.eps = ball, momentum, eps
        self.mean = geoopt.ManifoldParameter(torch.zeros(channels), manifold=ball)
        self.log_variance = nn.Parameter(torch.zeros(()))  # the learned variance, positive by construction
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_variance", torch.ones(()))

    def forward(self, u: Tensor) -> Tensor:
        batch, channels, height, width = u.shape
        x = self.ball.expmap0(u.permute(0, 2, 3, 1).reshape(-1, channels))
        if self.training:
            mean = self.ball.weighted_midpoint(x, reducedim=[0])
            variance = self.ball.dist(mean, x).square().mean()
            with torch.no_grad():
                self.running_mean.copy_(self.ball.geodesic(torch.tensor(self.momentum), self.running_mean, mean))
                self.running_variance.lerp_(variance, self.momentum)
        else:
            mean, variance = self.running_mean, self.running_variance
        tangent = self.ball.transp(mean, self.mean, self.ball.logmap(mean, x))
        tangent = tangent * torch.sqrt(self.log_variance.exp() / (variance + self.eps))
        y = self.ball.logmap0(self.ball.expmap(self.mean, tangent))
        return y.reshape(batch, height, width, channels).permute(0, 3, 1, 2)


class PoincareResidualBlock(nn.Module):
    """Two 3x3 Poincaré convolutions with midpoint batch norm; the residual joined by Möbius addition
    ``expmap0(f(u)) (+) expmap0(skip(u))`` (branch first), back to the tangent space, then ReLU. A 1x1 Poincaré
    convolution (with batch norm) is the skip where the stride or width changes."""

    def __init__(self, ball: geoopt.PoincareBall, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.ball = ball
        self.conv1 = PoincareConv2d(ball, in_channels, out_channels, 3, stride)
        self.bn1 = PoincareBatchNorm2d(ball, out_channels)
        self.conv2 = PoincareConv2d(ball, out_channels, out_channels, 3)
        self.bn2 = PoincareBatchNorm2d(ball, out_channels)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(
                PoincareConv2d(ball, in_channels, out_channels, 1, stride), PoincareBatchNorm2d(ball, out_channels)
            )

    def forward(self, u: Tensor) -> Tensor:
        branch = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(u)))))
        joined = self.ball.mobius_add(self.ball.expmap0(branch, dim=1), self.ball.expmap0(self.skip(u), dim=1), dim=1)
        return F.relu(self.ball.logmap0(joined, dim=1))


class PoincareResNetEncoder(nn.Module):
    """Stem (3x3 Poincaré conv, batch norm, ReLU), one stage per width of ``blocks_per_stage`` residual blocks
    (stride 2 from the second stage on), global average pooling of the tangent vectors: features of dimension
    ``widths[-1]``, tangent vectors at the ball's origin. ResNet-(6n+2) for ``blocks_per_stage = n`` and three
    widths (the paper's CIFAR models: 8-16-32 and wider, n = 3 for ResNet-20)."""

    def __init__(self, in_channels: int, widths: Sequence[int], blocks_per_stage: int, curvature: float = 0.1) -> None:
        super().__init__()
        if curvature <= 0 or blocks_per_stage < 1 or not widths or min(widths) < 1:
            raise ValueError(
                f"need curvature > 0, blocks_per_stage >= 1 and positive widths, got {curvature}, "
                f"{blocks_per_stage}, {list(widths)}"
            )
        self.ball = geoopt.PoincareBall(c=curvature)
        self.stem = nn.ModuleList(
            [PoincareConv2d(self.ball, in_channels, widths[0], 3), PoincareBatchNorm2d(self.ball, widths[0])]
        )
        blocks = []
        channels = widths[0]
        for stage, width in enumerate(widths):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                blocks.append(PoincareResidualBlock(self.ball, channels, width, stride))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = channels

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected images (batch, channels, height, width), got {tuple(x.shape)}")
        conv, norm = self.stem
        return self.blocks(F.relu(norm(conv(x)))).mean(dim=(2, 3))
