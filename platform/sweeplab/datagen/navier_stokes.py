"""2D incompressible Navier-Stokes in vorticity form on the unit torus, the FNO recipe (Li et al. 2020):

    w_t + u . grad w = nu Laplace w + f,   u = (psi_y, -psi_x),   -Laplace psi = w,
    f(x, y) = 0.1 (sin(2 pi (x + y)) + cos(2 pi (x + y))).

The data set maps the snapshots w(., t) at t = 1 .. input_steps (times ``record_every``) to those at
t = input_steps + 1 .. T (the FNO "time" benchmark: 10 -> 40 snapshots for T = 50).

Solver (torch, so that a batch runs on a GPU when there is one): Fourier pseudo-spectral on ``fine_resolution``^2
points, the advection term formed in physical space and dealiased by the 2/3 rule, Crank-Nicolson on the viscous
term and second-order Adams-Bashforth on advection and forcing (CNAB2: second order, one advection evaluation per
step; the first step uses forward Euler). Everything runs in float64 on every device, so CPU and GPU data agree to
rounding; in the chaotic regimes (small nu, long T) rounding differences grow like any perturbation, so there the
two agree only statistically, as do any two correct solvers.

Initial vorticity: N(0, sigma^2 (-Laplace + tau^2 I)^(-alpha)) with alpha = 2.5, tau = 7 as in the recipe:
Re(ifft2(sqrt_eig * (xi_1 + i xi_2))), sqrt_eig = s^2 sqrt(2) sigma (4 pi^2 |k|^2 + tau^2)^(-alpha/2),
sigma = tau^(alpha - 1) (= tau^(0.5 (2 alpha - d)), d = 2), zero mean, drawn in numpy from sample i's own
stream (seed, i) so it is the same on every device. Modes the dealiased solver drops (3|k_x| >= s or
3|k_y| >= s) are left out of it.

Cost: the defaults (256^2, dt 1e-4, T 50) take 500,000 steps per batch: hours on a CPU, meant for a GPU.

Only numpy and pydantic are imported at module level; torch is imported where it is used.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sweeplab.data._splits import ResolutionArrays, check_resolutions, multi_resolution_field
from sweeplab.data._types import TimeWindow
from sweeplab.datagen._batched import generate_in_batches, sample_rng
from sweeplab.datagen._spectral import dealiasing_cutoff, fft_wavenumbers

if TYPE_CHECKING:
    import torch

__all__ = [
    "NavierStokesParams",
    "generate_navier_stokes",
    "random_initial_vorticity",
    "solve_navier_stokes",
]


def _is_whole_multiple(total: float, part: float) -> bool:
    return round(total / part) >= 1 and math.isclose(round(total / part) * part, total, rel_tol=1e-9)


class NavierStokesParams(BaseModel):
    """Parameters of the Navier-Stokes data set; fields marked ``affects_output: False`` stay out of the cache key.

    The stored channel counts follow from the parameters: ``in_channels = input_steps`` and
    ``out_channels = final_time / record_every - input_steps``. ``mode``, ``step`` and ``teacher_forcing`` say how a
    model learns them (the same stored data serve every mode): ``model_channels`` are the model's.
    """

    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(1000, ge=1, description="Number of training samples (samples 0 .. n_train-1).")
    n_val: int = Field(100, ge=1, description="Number of validation samples (they follow the training samples).")
    n_test: int = Field(100, ge=1, description="Number of test samples (they follow the validation samples).")
    resolution: int = Field(64, ge=2, description="Output grid size s: s x s points subsampled from the fine grid.")
    fine_resolution: int = Field(256, ge=8, description="Points per side of the periodic grid the PDE is solved on.")
    nu: float = Field(
        1e-3, gt=0.0, description="Viscosity; the FNO regimes are 1e-3 (T = 50), 1e-4 (T = 30), 1e-5 (T = 20)."
    )
    final_time: float = Field(50.0, gt=0.0, description="Time T of the last snapshot.")
    record_every: float = Field(1.0, gt=0.0, description="Time between snapshots; the first is at t = record_every.")
    input_steps: int = Field(10, ge=1, description="Number of leading snapshots that form the input channels.")
    dt: float = Field(1e-4, gt=0.0, description="Time step; record_every must be a whole number of steps.")
    alpha: float = Field(2.5, gt=1.0, description="Smoothness exponent of the initial vorticity's covariance.")
    tau: float = Field(7.0, gt=0.0, description="Inverse length scale of the initial vorticity's covariance.")
    forcing_amplitude: float = Field(
        0.1, description="Amplitude A of the forcing f = A (sin(2 pi (x + y)) + cos(2 pi (x + y)))."
    )
    seed: int = Field(0, ge=0, description="Root seed; sample i draws from its own stream (seed, i).")
    test_resolutions: list[int] = multi_resolution_field()
    mode: Literal["all_at_once", "autoregressive"] = Field(
        "all_at_once",
        description="all_at_once: the model maps the input snapshots to every output snapshot in one call; "
        "autoregressive: it maps the last input_steps snapshots to the next `step` ones and is rolled out over the "
        "horizon (validation and test report the error of the whole rollout).",
        json_schema_extra={"affects_output": False},
    )
    step: int = Field(
        1,
        ge=1,
        description="Snapshots one autoregressive call predicts (autoregressive mode only).",
        json_schema_extra={"affects_output": False},
    )
    teacher_forcing: bool = Field(
        False,
        description="Autoregressive training on the true previous snapshots instead of the model's own rollout "
        "(the FNO-2D recurrent setting trains on its rollout, the default).",
        json_schema_extra={"affects_output": False},
    )
    batch_size: int = Field(
        20,
        ge=1,
        description="Samples advanced together (one batched solve). Does not change the data beyond rounding.",
        json_schema_extra={"affects_output": False},
    )
    device: str | None = Field(
        None,
        pattern=r"^(cpu|cuda(:\d+)?)$",
        description="Torch device to solve on; None = cuda if available, else cpu. Float64 on every device.",
        json_schema_extra={"affects_output": False},
    )

    @model_validator(mode="after")
    def _grids_and_times_fit(self) -> NavierStokesParams:
        check_resolutions(
            self.resolution,
            self.test_resolutions,
            lambda size: self.fine_resolution % size == 0,
            f"fine_resolution {self.fine_resolution}: fine_resolution must be a multiple of resolution, "
            f"e.g. 256 allows 128, 64, 32, ...",
        )
        if not _is_whole_multiple(self.record_every, self.dt):
            raise ValueError(f"record_every {self.record_every} is not a whole number of time steps dt {self.dt}")
        if not _is_whole_multiple(self.final_time, self.record_every):
            raise ValueError(f"final_time {self.final_time} is not a whole number of record_every {self.record_every}")
        if self.input_steps >= self.snapshots:
            raise ValueError(
                f"input_steps {self.input_steps} leaves no output snapshot: final_time / record_every = "
                f"{self.snapshots} snapshots in all"
            )
        if self.mode == "all_at_once" and (self.step != 1 or self.teacher_forcing):
            raise ValueError("step and teacher_forcing apply to mode autoregressive only")
        if self.step > self.out_channels:
            raise ValueError(f"step {self.step} exceeds the {self.out_channels} output snapshots")
        return self

    @property
    def subsampling_step(self) -> int:
        return self.fine_resolution // self.resolution

    @property
    def steps_per_snapshot(self) -> int:
        return round(self.record_every / self.dt)

    @property
    def snapshots(self) -> int:
        return round(self.final_time / self.record_every)

    @property
    def in_channels(self) -> int:
        return self.input_steps

    @property
    def out_channels(self) -> int:
        return self.snapshots - self.input_steps

    @property
    def model_channels(self) -> tuple[int, int]:
        """The model's input and output channels: one call predicts ``step`` snapshots when autoregressive."""
        return self.input_steps, self.step if self.mode == "autoregressive" else self.out_channels

    @property
    def physics(self) -> dict[str, float]:
        """The vorticity equation's coefficients, for physics losses (``vorticity_residual``)."""
        return {"nu": self.nu, "forcing_amplitude": self.forcing_amplitude, "time_step": self.record_every}

    @property
    def time_window(self) -> TimeWindow | None:
        if self.mode == "all_at_once":
            return None
        return TimeWindow(self.input_steps, self.step, "teacher_forcing" if self.teacher_forcing else "rollout")


def _kept_by_two_thirds_rule(k_x: np.ndarray, k_y: np.ndarray, size: int) -> np.ndarray:
    cutoff = dealiasing_cutoff(size)
    return (np.abs(k_x) <= cutoff) & (np.abs(k_y) <= cutoff)


def random_initial_vorticity(rng: np.random.Generator, size: int, alpha: float = 2.5, tau: float = 7.0) -> np.ndarray:
    """One draw of the recipe's zero-mean initial vorticity on the size x size grid x_i = i / size (float64)."""
    k = fft_wavenumbers(size)
    k_x, k_y = k[:, None], k[None, :]
    sigma = tau ** (alpha - 1.0)
    sqrt_eig = size**2 * math.sqrt(2.0) * sigma * (4.0 * np.pi**2 * (k_x**2 + k_y**2) + tau**2) ** (-alpha / 2.0)
    sqrt_eig[0, 0] = 0.0
    sqrt_eig *= _kept_by_two_thirds_rule(k_x, k_y, size)
    noise = rng.standard_normal((2, size, size))
    return np.real(np.fft.ifft2(sqrt_eig * (noise[0] + 1j * noise[1])))


class _SpectralVorticity:
    """The spectral operators of one grid on one device (rfft2 layout: axis -2 is x, axis -1 is y, halved)."""

    def __init__(self, size: int, nu: float, dt: float, forcing_amplitude: float, device: torch.device) -> None:
        import torch

        self.size = size
        k_x = fft_wavenumbers(size)[:, None]
        k_y = np.arange(size // 2 + 1, dtype=np.float64)[None, :]
        minus_laplacian = 4.0 * np.pi**2 * (k_x**2 + k_y**2)
        inverse = np.divide(1.0, minus_laplacian, out=np.zeros_like(minus_laplacian), where=minus_laplacian > 0)

        def on_device(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array)).to(device)

        self.ddx = on_device(2j * np.pi * k_x * np.ones_like(k_y))
        self.ddy = on_device(2j * np.pi * k_y * np.ones_like(k_x))
        self.inverse_minus_laplacian = on_device(inverse)
        self.kept = on_device(_kept_by_two_thirds_rule(k_x, k_y, size).astype(np.float64))
        # Crank-Nicolson: (1 + dt nu K / 2) w_new = (1 - dt nu K / 2) w + dt * explicit terms, K = -Laplace.
        self.explicit_viscous = on_device(1.0 - 0.5 * dt * nu * minus_laplacian)
        self.implicit_viscous_inverse = on_device(1.0 / (1.0 + 0.5 * dt * nu * minus_laplacian))
        grid = np.arange(size) / size
        phase = 2.0 * np.pi * (grid[:, None] + grid[None, :])
        forcing = forcing_amplitude * (np.sin(phase) + np.cos(phase))
        self.forcing = on_device(np.fft.rfft2(forcing))

    def advection(self, w_hat: torch.Tensor) -> torch.Tensor:
        """The Fourier transform of u . grad w, dealiased (modes the 2/3 rule drops are zero)."""
        import torch

        psi_hat = w_hat * self.inverse_minus_laplacian
        shape = (self.size, self.size)
        u = torch.fft.irfft2(self.ddy * psi_hat, s=shape)
        v = torch.fft.irfft2(-self.ddx * psi_hat, s=shape)
        w_x = torch.fft.irfft2(self.ddx * w_hat, s=shape)
        w_y = torch.fft.irfft2(self.ddy * w_hat, s=shape)
        return self.kept * torch.fft.rfft2(u * w_x + v * w_y)


def _resolve_device(device: str | None) -> torch.device:
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def solve_navier_stokes(
    w0: np.ndarray,
    *,
    nu: float,
    dt: float,
    steps_per_snapshot: int,
    snapshots: int,
    forcing_amplitude: float = 0.1,
    stride: int = 1,
    device: str | None = None,
) -> np.ndarray:
    """Snapshots w(., j * steps_per_snapshot * dt), j = 1 .. snapshots, from ``w0`` shaped (batch, s, s).

    ``w0`` holds vorticity at x_i = i / s (axis 1 is x, axis 2 is y); modes the 2/3 rule drops are removed from
    it first. Returns float64 shaped (batch, snapshots, s / stride, s / stride): every ``stride``-th point.
    """
    import torch

    w0 = np.asarray(w0, dtype=np.float64)
    if w0.ndim != 3 or w0.shape[1] != w0.shape[2]:
        raise ValueError(f"w0 must be a batch of square grids (batch, s, s), got shape {w0.shape}")
    size = w0.shape[-1]
    target = _resolve_device(device)
    operators = _SpectralVorticity(size, nu, dt, forcing_amplitude, target)
    shape = (size, size)

    with torch.no_grad():
        w_hat = operators.kept * torch.fft.rfft2(torch.from_numpy(w0).to(target))
        previous_advection: torch.Tensor | None = None
        coarse = size // stride
        records = torch.empty((w0.shape[0], snapshots, coarse, coarse), dtype=torch.float64, device=target)
        for snapshot in range(snapshots):
            for _ in range(steps_per_snapshot):
                advection = operators.advection(w_hat)
                # Adams-Bashforth 2 extrapolates the explicit term to mid-step; forward Euler on the first step.
                extrapolated = advection if previous_advection is None else 1.5 * advection - 0.5 * previous_advection
                w_hat = operators.implicit_viscous_inverse * (
                    operators.explicit_viscous * w_hat + dt * (operators.forcing - extrapolated)
                )
                previous_advection = advection
            records[:, snapshot] = torch.fft.irfft2(w_hat, s=shape)[:, ::stride, ::stride]
        return records.cpu().numpy()


def generate_navier_stokes(params: NavierStokesParams) -> dict[str, np.ndarray]:
    """The data set: x = the first ``input_steps`` snapshots, y = the remaining ones, float32, shaped
    (samples, channels, resolution, resolution); with ``test_resolutions``, also x_test_<r>/y_test_<r> on r x r
    points. A batch that holds test samples is recorded on the finest grid it needs and subsampled from there.
    """

    def solve_batch(indices: range, resolutions: list[int]) -> ResolutionArrays:
        initial = np.stack(
            [
                random_initial_vorticity(
                    sample_rng(params.seed, index), params.fine_resolution, params.alpha, params.tau
                )
                for index in indices
            ]
        )
        steps = {size: params.fine_resolution // size for size in resolutions}
        stride = math.gcd(*steps.values())
        records = solve_navier_stokes(
            initial,
            nu=params.nu,
            dt=params.dt,
            steps_per_snapshot=params.steps_per_snapshot,
            snapshots=params.snapshots,
            forcing_amplitude=params.forcing_amplitude,
            stride=stride,
            device=params.device,
        )
        by_size = {}
        for size, step in steps.items():
            subsampled = records[:, :, :: step // stride, :: step // stride].astype(np.float32)
            by_size[size] = (subsampled[:, : params.input_steps], subsampled[:, params.input_steps :])
        return by_size

    split_sizes = {"train": params.n_train, "val": params.n_val, "test": params.n_test}
    description = f"Navier-Stokes {params.fine_resolution}^2 -> {params.resolution}^2, nu {params.nu:g}"
    return generate_in_batches(
        split_sizes, params.batch_size, solve_batch, description, params.resolution, params.test_resolutions
    )
