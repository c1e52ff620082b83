"""Linear solvers for data generation: one call solves a whole sequence of systems A_i x_i = b_i.

Data sets for operator learning solve many systems whose matrices come from similar parameter fields p_i. The
methods (``SolverMethod``):

- ``direct``: sparse LU (SuperLU) with a symmetric fill-reducing ordering, per system.
- ``amg``: conjugate gradients preconditioned by one algebraic-multigrid V-cycle (pyamg, classical Ruge-Stueben
  coarsening), set up per system. Only for symmetric positive definite systems.
- ``gmg``: conjugate gradients preconditioned by one geometric-multigrid V-cycle on the system's grid hierarchy,
  the coarse operators rediscretised from the coefficient (``_multigrid``). For SPD systems assembled on a grid
  that halves (Darcy, Poisson on odd grids such as 421 x 421).
- ``gmres``: scipy's restarted GMRES(40), no preconditioner: the baseline of the SKR paper.
- ``skr``: Sorting Krylov Recycling (Wang et al., ICLR 2024): the systems are put in greedy nearest-neighbour
  order of their parameter fields (Frobenius distance), then solved one after another by GCRO-DR(m = 40,
  k = 20) (Parks, de Sturler et al. 2006), which carries a k-dimensional recycle space from each system to the
  next. GCRO-DR is implemented in ``_gcrodr``, not scipy's ``gcrotmk``: see its docstring. No
  preconditioner, as in the paper's unpreconditioned setting.
- ``dcdm``: the Deep Conjugate Direction Method (Kaneda et al., ICML 2023): conjugate directions predicted by a
  trained network from the residual (``_dcdm``), for SPD systems assembled from a nodal coefficient; by default
  A-orthogonalised against every previous direction, each step also spanning the residual (our safeguards
  against a network that stalls; ``solve_dcdm(memory=PAPER_MEMORY, with_residual=False)`` is the paper's).
  The network is an MLflow model; the caller that reads MLflow installs its loader (``direction_model_loader``).
- ``auto``: ``choose_method`` by size and definiteness, from the measurements recorded there.

Tolerance: the iterative methods stop when the true relative residual ||b - A x|| / ||b|| <= tolerance (checked
with a fresh product A x, not the recurrence); the direct method is exact to rounding. Solutions come back in
the order of the input, whatever order the method solved them in.
"""

from sweeplab.datagen.solvers._dcdm import (
    PAPER_MEMORY,
    DirectionModel,
    direction_model_loader,
    load_direction_model,
    network_directions,
    solve_dcdm,
)
from sweeplab.datagen.solvers._sequence import (
    SOLVER_METHODS,
    SolverMethod,
    SolveStats,
    choose_method,
    greedy_order,
    iter_solutions,
    resolve_method,
    single_threaded_blas,
    solve_sequence,
)
from sweeplab.datagen.solvers._system import ConvergenceError, LinearSystem

__all__ = [
    "PAPER_MEMORY",
    "SOLVER_METHODS",
    "ConvergenceError",
    "DirectionModel",
    "LinearSystem",
    "SolveStats",
    "SolverMethod",
    "choose_method",
    "direction_model_loader",
    "greedy_order",
    "iter_solutions",
    "load_direction_model",
    "network_directions",
    "resolve_method",
    "single_threaded_blas",
    "solve_dcdm",
    "solve_sequence",
]
