"""Data generation: the generators of the data sets in ``sweeplab.data``'s registry (Darcy, Burgers,
Navier-Stokes, room acoustics, KdV and Kuramoto-Sivashinsky with observations, denoising pairs, labelled images,
synthetic features) and the linear solvers they use (``solvers``).

The registry names each parameter model and generator by import path, so ``sweeplab.data`` never imports this
package; this package uses the data plumbing's split helpers and containers. Each module imports only numpy and
pydantic at module level (scipy, pyamg and torch where they are used), so validating parameters stays cheap.
"""
