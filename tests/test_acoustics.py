"""The room-acoustics generator: the leapfrog solver against the free-field solution before reflections arrive,
second-order convergence under grid refinement, the exact conservation of the mean pressure with rigid walls, the
energy absorbing walls remove, and the data set's layout."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from sweeplab.datagen.acoustics import (
    RoomAcousticsParams,
    free_field_pressure,
    gaussian_pulse,
    generate_room_acoustics,
    solve_room,
)

SPEED, ROOM = 343.0, 2.0
SIGMA = SPEED / (np.pi * 1000.0 / 2.0)  # the authors' source width at f_max = 1 kHz: 0.218 m
CENTRE = np.array([[1.0, 1.0]])


def solve_at(nodes_per_side: int, time: float, walls: list[str], sources: np.ndarray = CENTRE) -> np.ndarray:
    spacing = ROOM / (nodes_per_side - 1)
    steps = int(np.ceil(time * SPEED / (0.5 * spacing)))
    initial = gaussian_pulse(np.linspace(0.0, ROOM, nodes_per_side), sources, SIGMA)
    return solve_room(initial, spacing, SPEED, time / steps, steps, 1, walls)[:, 0]


def free_field_error(nodes_per_side: int, walls: list[str]) -> float:
    """Relative L2 error within 0.6 m of the source at t = 1 ms (c t = 0.34 m): the pulse's reflections from the
    walls, 1 m away, are still exp(-28) small there."""
    time = 1e-3
    pressure = solve_at(nodes_per_side, time, walls)[0]
    nodes = np.linspace(0.0, ROOM, nodes_per_side)
    radius = np.hypot(*np.meshgrid(nodes - 1.0, nodes - 1.0, indexing="ij"))
    radii = np.linspace(0.0, 1.0, 1001)  # the reference on a fine radial grid, interpolated
    reference = np.interp(radius, radii, free_field_pressure(radii, time, SIGMA, SPEED))
    near = radius < 0.6
    return float(np.linalg.norm((pressure - reference)[near]) / np.linalg.norm(reference[near]))


def test_free_field_reference_is_the_pulse_at_time_zero_and_spreads() -> None:
    radii = np.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(free_field_pressure(radii, 0.0, SIGMA, SPEED), np.exp(-(radii**2) / SIGMA**2), atol=1e-6)
    later = free_field_pressure(radii, 2e-3, SIGMA, SPEED)
    assert abs(later[0]) < 0.3 and np.argmax(later) > 0  # the peak has left the centre as a ring


@pytest.mark.parametrize("walls", [["rigid"] * 4, ["absorbing"] * 4])
def test_solver_matches_the_free_field_solution_with_second_order_convergence(walls: list[str]) -> None:
    errors = [free_field_error(n, walls) for n in (33, 65, 129)]
    assert errors[-1] < 2e-3, errors
    # Halving h (and dt with it) divides the error by 4: measured 4.0 and 3.9.
    for coarse, fine in zip(errors, errors[1:], strict=False):
        assert 3.5 < coarse / fine < 4.5, errors


def trapezoid_weights(nodes_per_side: int) -> np.ndarray:
    weights = np.ones(nodes_per_side)
    weights[[0, -1]] = 0.5
    return np.outer(weights, weights)


def test_rigid_walls_conserve_the_mean_pressure_exactly() -> None:
    # With zero normal derivative and the fluid at rest, d^2/dt^2 of the integral of p is 0, so it stays at its
    # initial value; the mirrored-ghost Laplacian sums to zero under the trapezoid rule, so this holds to rounding.
    sources = np.array([[0.6, 1.3], [1.5, 0.4]])
    spacing = ROOM / 64
    initial = gaussian_pulse(np.linspace(0.0, ROOM, 65), sources, SIGMA)
    snapshots = solve_room(initial, spacing, SPEED, 0.5 * spacing / SPEED, 40, 10, ["rigid"] * 4)
    weights = trapezoid_weights(65)
    start = (initial * weights).sum(axis=(-1, -2))
    means = (snapshots * weights).sum(axis=(-1, -2))
    np.testing.assert_allclose(means, np.repeat(start[:, None], 10, axis=1), rtol=1e-11)


def test_absorbing_walls_let_the_sound_out() -> None:
    # 12 ms: the pulse has crossed the 2 m room twice. Rigid walls keep its energy (the RMS pressure is of the
    # order of its start), absorbing walls leave under 2% of it (measured 0.9%, the first-order condition
    # reflecting a little of what meets the walls obliquely).
    sources = np.array([[0.6, 1.3]])
    weights = trapezoid_weights(129)

    def rms(walls: list[str]) -> float:
        pressure = solve_at(129, 12e-3, walls, sources)[0]
        return float(np.sqrt((pressure**2 * weights).sum() / weights.sum()))

    start = float(
        np.sqrt((gaussian_pulse(np.linspace(0, ROOM, 129), sources, SIGMA) ** 2 * weights).sum() / weights.sum())
    )
    assert rms(["rigid"] * 4) > 0.5 * start
    assert rms(["absorbing"] * 4) < 0.02 * start
    # One absorbing wall takes out less than four.
    assert rms(["absorbing"] * 4) < rms(["absorbing", "rigid", "rigid", "rigid"]) < rms(["rigid"] * 4)


def test_unstable_time_step_is_refused() -> None:
    with pytest.raises(ValueError, match="stability"):
        solve_room(np.zeros((1, 9, 9)), 0.1, SPEED, 0.8 * 0.1 / SPEED, 1, 1, ["rigid"] * 4)


def test_data_set_stores_the_pulse_and_the_snapshots_at_the_output_grid() -> None:
    params = RoomAcousticsParams(
        n_train=3,
        n_val=1,
        n_test=2,
        resolution=17,
        fine_resolution=65,
        n_times=4,
        final_time=2e-3,
        test_resolutions=[33],
        batch_size=2,
    )
    arrays = generate_room_acoustics(params)
    assert arrays["x_train"].shape == (3, 1, 17, 17) and arrays["y_train"].shape == (3, 4, 17, 17)
    assert arrays["x_test_33"].shape == (2, 1, 33, 33) and arrays["y_test_33"].shape == (2, 4, 33, 33)
    # The last snapshot is the fine solve at T, subsampled; the input is the pulse around a source in the room.
    fine = generate_room_acoustics(params.model_copy(update={"resolution": 65, "test_resolutions": []}))
    np.testing.assert_array_equal(arrays["y_train"], fine["y_train"][:, :, ::4, ::4])
    peak = np.unravel_index(np.argmax(fine["x_train"][0, 0]), (65, 65))
    assert all(
        params.source_margin - params.spacing <= i * params.spacing <= ROOM - params.source_margin + params.spacing
        for i in peak
    )
    # The batch size does not change the data.
    rebatched = generate_room_acoustics(params.model_copy(update={"batch_size": 5}))
    for key in arrays:
        np.testing.assert_array_equal(arrays[key], rebatched[key])


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"fine_resolution": 100}, "multiple"),
        ({"fine_resolution": 33, "resolution": 17}, "points per shortest wavelength"),
        ({"source_margin": 1.0}, "no room"),
        ({"courant": 0.8}, "less than or equal"),
    ],
)
def test_bad_parameters_are_clear_errors(update: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RoomAcousticsParams(**update)
