"""Linear solvers for data generation, timed: the SKR paper's setting and the FNO Darcy set; markdown tables.

Part 1, the SKR paper's setting (Wang et al., ICLR 2024, Table 1, no preconditioner): 100 systems of each
problem, Darcy with log-normal coefficient on 82^2 nodes (n = 6,400) and Helmholtz on 102^2 nodes
(n = 10,000) with k0 = 3 (nearly definite), at tolerances 1e-5 and 1e-8; optionally (``--problems``) Helmholtz
with k0 = 7.5 (about three negative eigenvalues), where restarted GMRES stagnates. Solvers: GMRES(40) twice, scipy's
(the baseline) and this package's GCRO-DR code with k = 0 (the same algorithm in the same code as SKR, so that
the speed-up is not an implementation artefact); GCRO-DR(40, 20) recycling in input order; SKR (greedy
sorting + GCRO-DR(40, 20)); AMG-CG; direct; auto. Iterations are matrix-vector products of the Krylov process
(Arnoldi or CG steps, plus the k products A Y that move the recycle space to each new matrix; not the one
true-residual check per restart, which all Krylov methods here make). The solvers take turns, a few systems
each, so that load from other processes hits them alike; a solver that fails to converge is dropped from that
problem and the table says so.

Part 2, the FNO Darcy set (threshold coefficient): seconds per sample (random field, assembly, solve,
subsampling) of direct, amg, gmg and auto on fine grids of 85 ... 421 nodes, taking turns sample by sample.

Part 3: the time to generate the full 1,200-sample Darcy-421 set (``generate_darcy``, 2 worker processes) with
auto (``--set-solvers`` adds others); by default from a 120-sample subset, extrapolated linearly (the output
says so); ``--full-set`` generates all 1,200.

Part 4, with ``--dcdm-model URI`` (a trained ``dcdm`` model, e.g. ``models:/dcdm-darcy@best`` from
``studies/dcdm_darcy.yaml``, in ``--tracking-uri``'s store): the Deep Conjugate Direction Method against CG (scipy,
no preconditioner), AMG-CG and GMG-CG at the same tolerances, on Darcy systems (threshold coefficient, f = 1) whose
coefficients come from another random stream than the training set's (``--dcdm-seed``), on ``--dcdm-grids``.
Iterations and seconds per system, solvers taking turns system by system; torch on one thread.

All in one process with one BLAS thread (the solvers' setting). Run from the repository root:
``python bench/datagen.py`` (about 13 minutes on 2 busy cores; ``--help`` for smaller runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sweeplab.datagen.darcy import DarcyParams, darcy_sample, generate_darcy
from sweeplab.datagen.families import random_systems
from sweeplab.datagen.solvers import (
    PAPER_MEMORY,
    ConvergenceError,
    DirectionModel,
    LinearSystem,
    choose_method,
    iter_solutions,
    network_directions,
    resolve_method,
    single_threaded_blas,
    solve_dcdm,
)


@dataclass(frozen=True)
class Problem:
    label: str
    family: str
    size: int  # nodes per side, boundary included
    wavenumber: float = 3.0


PROBLEMS = {
    "darcy": Problem("Darcy, log-normal coefficient, n = 6,400", "darcy_lognormal", 82),
    "helmholtz": Problem("Helmholtz, k0 = 3, n = 10,000", "helmholtz", 102, 3.0),
    "helmholtz-indefinite": Problem("Helmholtz, k0 = 7.5 (indefinite), n = 10,000", "helmholtz", 102, 7.5),
}


@dataclass(frozen=True)
class Variant:
    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)


SCIPY_GMRES = "GMRES(40), scipy"
OWN_GMRES = "GMRES(40), GCRO-DR code with k = 0"
VARIANTS = (
    Variant(SCIPY_GMRES, "gmres"),
    Variant(OWN_GMRES, "skr", {"recycle_dimension": 0, "sort": False}),
    Variant("recycling, unsorted: GCRO-DR(40, 20)", "skr", {"sort": False}),
    Variant("SKR: sorted + GCRO-DR(40, 20)", "skr"),
    Variant("AMG-CG", "amg"),
    Variant("direct (SuperLU)", "direct"),
    Variant("auto", "auto"),
)


@dataclass
class Outcome:
    seconds: float = 0.0
    iterations: int = 0
    solutions: dict[int, np.ndarray] = field(default_factory=dict)
    failure: str | None = None


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--problems", nargs="*", default=["darcy", "helmholtz"], choices=list(PROBLEMS), help="part 1")
    parser.add_argument("--systems", type=int, default=100, help="systems per problem (part 1)")
    parser.add_argument("--tolerances", nargs="*", type=float, default=[1e-5, 1e-8], help="part 1")
    parser.add_argument("--chunk", type=int, default=5, help="systems a solver solves per turn (part 1)")
    parser.add_argument(
        "--max-iterations", type=int, default=20_000, help="per system; beyond, the solver is dropped (part 1)"
    )
    parser.add_argument(
        "--grids", nargs="*", type=int, default=[85, 141, 211, 421], help="fine grids of part 2 (nodes per side)"
    )
    parser.add_argument("--samples-421", type=int, default=6, help="samples per solver at 421^2, more on coarser")
    parser.add_argument("--subset", type=int, default=120, help="samples generated in part 3 (0: skip part 3)")
    parser.add_argument("--full-set", action="store_true", help="part 3 generates all 1,200 samples")
    parser.add_argument("--workers", type=int, default=2, help="processes generating in part 3")
    parser.add_argument(
        "--set-solvers", nargs="*", default=["auto"], choices=["auto", "direct", "amg", "gmg"], help="part 3"
    )
    parser.add_argument("--dcdm-model", help="MLflow URI of a trained dcdm model: runs part 4")
    parser.add_argument("--tracking-uri", help="the store of --dcdm-model (default: $MLFLOW_TRACKING_URI, mlruns/)")
    parser.add_argument("--dcdm-grids", nargs="*", type=int, default=[33, 65], help="nodes per side (part 4)")
    parser.add_argument("--dcdm-systems", type=int, default=20, help="systems per grid (part 4)")
    parser.add_argument("--dcdm-tolerances", nargs="*", type=float, default=[1e-4, 1e-8], help="part 4")
    parser.add_argument("--dcdm-seed", type=int, default=1, help="random stream of part 4's coefficients")
    return parser.parse_args()


def take_turns(systems: list[LinearSystem], tolerance: float, chunk: int, max_iterations: int) -> dict[str, Outcome]:
    """Every variant solves all systems; they take turns of ``chunk`` systems, each turn timed."""
    outcomes = {variant.label: Outcome() for variant in VARIANTS}
    running: dict[str, Iterator[tuple[int, np.ndarray, int]]] = {}
    for variant in VARIANTS:
        try:
            running[variant.label] = iter_solutions(
                systems, variant.method, tolerance, max_iterations=max_iterations, **variant.options
            )
        except ValueError:
            outcomes[variant.label].failure = "not applicable: the matrices are not all provably definite"
    while running:
        for label in list(running):
            outcome = outcomes[label]
            turn: list[tuple[int, np.ndarray, int]] = []
            started = time.perf_counter()
            try:
                for _ in range(chunk):
                    turn.append(next(running[label]))
            except StopIteration:
                del running[label]
            except ConvergenceError as error:
                outcome.failure = f"{error} (at system {len(outcome.solutions) + len(turn) + 1})"
                del running[label]
            outcome.seconds += time.perf_counter() - started
            for index, solution, iterations in turn:
                outcome.solutions[index] = solution
                outcome.iterations += iterations
    return outcomes


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator == 0:
        return "—"
    return f"{numerator / denominator:.2f}x"


def report_problem(
    problem: Problem, systems: list[LinearSystem], tolerance: float, outcomes: dict[str, Outcome]
) -> None:
    direct = outcomes["direct (SuperLU)"].solutions
    complete = {label: o for label, o in outcomes.items() if o.failure is None}
    scipy_seconds = complete[SCIPY_GMRES].seconds if SCIPY_GMRES in complete else None
    own_seconds = complete[OWN_GMRES].seconds if OWN_GMRES in complete else None
    own_iterations = complete[OWN_GMRES].iterations if OWN_GMRES in complete else None
    print(f"\n### {problem.label}, {len(systems)} systems, tolerance {tolerance:g}\n")
    print(
        "| solver | time (s) | ms / system | iterations | iterations / system | speed-up over scipy GMRES(40) "
        "| over own GMRES(40) | fewer iterations than GMRES(40) | max residual | max error vs direct |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for variant in VARIANTS:
        outcome = outcomes[variant.label]
        label = variant.label
        if variant.method == "auto" and outcome.failure is None:
            label += f" (= {resolve_method(systems, 'auto')})"
        if outcome.failure is not None:
            print(f"| {label} | — | — | — | — | — | — | — | — | {outcome.failure} |")
            continue
        residuals = [
            np.linalg.norm(s.rhs - s.matrix @ outcome.solutions[i]) / np.linalg.norm(s.rhs)
            for i, s in enumerate(systems)
        ]
        errors = [np.linalg.norm(outcome.solutions[i] - x) / np.linalg.norm(x) for i, x in direct.items()]
        iterative = outcome.iterations > 0
        # Iterations compare across the unpreconditioned Krylov methods only (a CG step costs a V-cycle).
        krylov = variant.method in ("gmres", "skr")
        print(
            f"| {label} | {outcome.seconds:.2f} | {1e3 * outcome.seconds / len(systems):.1f} "
            f"| {outcome.iterations if iterative else '—'} "
            f"| {outcome.iterations / len(systems) if iterative else 0:.0f} "
            f"| {_ratio(scipy_seconds, outcome.seconds)} | {_ratio(own_seconds, outcome.seconds)} "
            f"| {_ratio(own_iterations, outcome.iterations) if krylov else '—'} "
            f"| {max(residuals):.1e} | {max(errors) if errors else float('nan'):.1e} |"
        )


def part_skr(arguments: argparse.Namespace) -> None:
    print("\n## Part 1: the SKR paper's setting (no preconditioner)")
    for key in arguments.problems:
        problem = PROBLEMS[key]
        systems = random_systems(problem.family, arguments.systems, problem.size, wavenumber=problem.wavenumber)
        definite = sum(s.definite for s in systems)
        print(f"\n{problem.label}: {definite} of {len(systems)} systems provably definite")
        for tolerance in arguments.tolerances:
            outcomes = take_turns(systems, tolerance, arguments.chunk, arguments.max_iterations)
            report_problem(problem, systems, tolerance, outcomes)


def part_darcy_sizes(arguments: argparse.Namespace) -> None:
    print("\n## Part 2: FNO Darcy set (threshold coefficient), seconds per sample by fine grid\n")
    methods = ("direct", "amg", "gmg", "auto")
    print(
        "| fine grid | unknowns | samples | "
        + " | ".join(f"{m} s/sample" for m in methods)
        + " | auto's method | amg / gmg | max difference amg, gmg vs direct |"
    )
    print("| --- " * (len(methods) + 6) + "|")
    for grid in arguments.grids:
        count = max(arguments.samples_421, min(40, round(arguments.samples_421 * (420 / (grid - 1)) ** 2)))
        params = {m: DarcyParams(fine_resolution=grid, resolution=grid, solver=m, workers=1) for m in methods}
        seconds: dict[str, list[float]] = {m: [] for m in methods}
        outputs: dict[str, list[np.ndarray]] = {m: [] for m in methods}
        for index in range(count):
            for method in methods:
                started = time.perf_counter()
                _, solution = darcy_sample(params[method], index)
                seconds[method].append(time.perf_counter() - started)
                outputs[method].append(solution)
        median = {m: statistics.median(seconds[m]) for m in methods}
        differences = [
            max(np.abs(a - d).max() / np.abs(d).max() for a, d in zip(outputs[m], outputs["direct"], strict=True))
            for m in ("amg", "gmg")
        ]
        chosen = choose_method((grid - 2) ** 2, definite=True, on_a_grid_hierarchy=grid % 2 == 1)
        print(
            f"| {grid}^2 | {(grid - 2) ** 2:,} | {count} | "
            + " | ".join(f"{median[m]:.3f}" for m in methods)
            + f" | {chosen} | {median['amg'] / median['gmg']:.2f} | {differences[0]:.1e}, {differences[1]:.1e} |"
        )


def part_full_set(arguments: argparse.Namespace) -> None:
    total = 1200
    count = total if arguments.full_set else min(arguments.subset, total)
    print(f"\n## Part 3: Darcy-421 set, {total:,} samples, {arguments.workers} worker processes\n")
    print("| solver | samples generated | seconds | samples/s | full set (1,200 samples) |")
    print("| --- | --- | --- | --- | --- |")
    for method in arguments.set_solvers:
        params = DarcyParams(
            n_train=count - 2,
            n_val=1,
            n_test=1,
            fine_resolution=421,
            resolution=85,
            solver=method,
            workers=arguments.workers,
        )
        started = time.perf_counter()
        generate_darcy(params)
        seconds = time.perf_counter() - started
        estimate = "measured" if count == total else "extrapolated linearly"
        print(
            f"| {method} | {count} | {seconds:.1f} | {count / seconds:.2f} "
            f"| {seconds * total / count / 60:.1f} min ({estimate}) |"
        )


# Part 4's solvers: scipy's CG without preconditioner, multigrid-preconditioned CG, and DCDM as the paper runs it
# (the last two directions, the network's direction alone) and as `solver: dcdm` does (every direction, + r).
DCDM_RIVALS = ("CG (scipy)", "AMG-CG", "GMG-CG", "DCDM, paper (2 directions, q only)", "DCDM, solver dcdm")
DCDM_MAX_ITERATIONS = 500


def _solve_one(name: str, system: LinearSystem, tolerance: float, directions: DirectionModel) -> tuple[np.ndarray, int]:
    if name == "CG (scipy)":
        from scipy.sparse.linalg import cg

        steps: list[np.ndarray] = []
        solution, _ = cg(system.matrix, system.rhs, rtol=tolerance, atol=0.0, callback=steps.append)
        return solution, len(steps)
    if name.startswith("DCDM, paper"):
        return solve_dcdm(system, directions, tolerance, DCDM_MAX_ITERATIONS, PAPER_MEMORY, with_residual=False)
    method = {"AMG-CG": "amg", "GMG-CG": "gmg", "DCDM, solver dcdm": "dcdm"}[name]
    _, solution, iterations = next(
        iter_solutions([system], method, tolerance, max_iterations=DCDM_MAX_ITERATIONS, directions=directions)
    )
    return solution, iterations


def part_dcdm(arguments: argparse.Namespace) -> None:
    import torch

    from sweeplab.serving import load_model

    torch.set_num_threads(1)
    directions: DirectionModel = network_directions(load_model(arguments.dcdm_model, arguments.tracking_uri))
    print(f"\n## Part 4: DCDM ({arguments.dcdm_model}) against CG and multigrid-preconditioned CG\n")
    print(
        f"Darcy, threshold coefficient 3/12, f = 1; {arguments.dcdm_systems} systems per grid from random stream "
        f"{arguments.dcdm_seed}. Iterations: DCDM network evaluations, CG steps (one V-cycle each for AMG/GMG-CG).\n"
    )
    print(
        "| grid | unknowns | tolerance | solver | iterations / system (max) | ms / system | ms / iteration "
        "| max residual | max error vs direct |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for grid in arguments.dcdm_grids:
        systems = random_systems("darcy_threshold", arguments.dcdm_systems, grid, seed=arguments.dcdm_seed)
        reference = [solution for _, solution, _ in iter_solutions(systems, "direct")]
        for tolerance in arguments.dcdm_tolerances:
            seconds = {name: 0.0 for name in DCDM_RIVALS}
            counts: dict[str, list[int]] = {name: [] for name in DCDM_RIVALS}
            residuals: dict[str, list[float]] = {name: [] for name in DCDM_RIVALS}
            errors: dict[str, list[float]] = {name: [] for name in DCDM_RIVALS}
            failures: dict[str, int] = {name: 0 for name in DCDM_RIVALS}
            for system, exact in zip(systems, reference, strict=True):
                for name in DCDM_RIVALS:  # taking turns, system by system
                    started = time.perf_counter()
                    try:
                        solution, iterations = _solve_one(name, system, tolerance, directions)
                    except ConvergenceError:
                        failures[name] += 1
                        continue
                    seconds[name] += time.perf_counter() - started
                    counts[name].append(iterations)
                    residuals[name].append(
                        float(np.linalg.norm(system.rhs - system.matrix @ solution) / np.linalg.norm(system.rhs))
                    )
                    errors[name].append(float(np.linalg.norm(solution - exact) / np.linalg.norm(exact)))
            for name in DCDM_RIVALS:
                total = sum(counts[name])
                if failures[name]:
                    print(
                        f"| {grid}^2 | {(grid - 2) ** 2:,} | {tolerance:g} | {name} | not converged on "
                        f"{failures[name]} of {len(systems)} systems within {DCDM_MAX_ITERATIONS} iterations "
                        "| — | — | — | — |"
                    )
                    continue
                print(
                    f"| {grid}^2 | {(grid - 2) ** 2:,} | {tolerance:g} | {name} "
                    f"| {total / len(systems):.1f} ({max(counts[name])}) | {1e3 * seconds[name] / len(systems):.1f} "
                    f"| {1e3 * seconds[name] / max(total, 1):.2f} | {max(residuals[name]):.1e} "
                    f"| {max(errors[name]):.1e} |"
                )


def main() -> None:
    arguments = parse_arguments()
    import pyamg
    import scipy

    print("# Data-generation solvers\n")
    print(f"Command: `python {' '.join(sys.argv)}`  ")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Machine: {platform.processor() or platform.machine()}, {cores} cores (load average {load:.1f} at start); "
        f"numpy {np.__version__}, scipy {scipy.__version__}, pyamg {pyamg.__version__}; one BLAS thread."
    )
    started = time.perf_counter()
    with single_threaded_blas():
        if arguments.problems and arguments.systems > 0:
            part_skr(arguments)
        if arguments.grids:
            part_darcy_sizes(arguments)
        if arguments.dcdm_model:
            part_dcdm(arguments)
    if arguments.subset > 0 or arguments.full_set:
        part_full_set(arguments)
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
