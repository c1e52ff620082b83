"""Training steps of a trained model on the CPU with subnormal floats flushed to zero and without
(``trainer.flush_denormal``), against the same weights with their subnormal entries set to zero.

Weights that weight decay drives towards zero (unused spectral modes, dead channels) become subnormal floats
(below 1.18e-38 in float32), and every operation on one costs many times a normal one on x86 CPUs unless the
thread treats them as zero. The benchmark loads a sweeplab model (``--model``: run id, ``runs:/``, ``models:/``),
counts its subnormal weights and times forward + backward + Adam steps on a batch of random inputs of the model's
shape, the four cases interleaved, one torch thread; medians over ``--repeats``.

    python bench/subnormals.py --model models:/burgers-operators-paper@best \\
        --tracking-uri sqlite:///mlruns/burgers/fno1d_paper/mlflow.db --input-shape 20 1 1024
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

SMALLEST_NORMAL = 1.1754944e-38  # float32


def main() -> None:
    import torch

    from sweeplab import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="run id, runs:/..., models:/...")
    parser.add_argument("--tracking-uri", help="the store holding the model")
    parser.add_argument("--input-shape", type=int, nargs="+", required=True, help="batch, channels, *grid")
    parser.add_argument("--steps", type=int, default=5, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    trained = load_model(args.model, args.tracking_uri)
    subnormal = total = 0
    zeroed = copy.deepcopy(trained)
    with torch.no_grad():
        for parameter in zeroed.parameters():
            values = torch.view_as_real(parameter) if parameter.is_complex() else parameter
            tiny = (values != 0) & (values.abs() < SMALLEST_NORMAL)
            subnormal, total = subnormal + int(tiny.sum()), total + values.numel()
            values[tiny] = 0.0
    print(f"{args.model}: {subnormal:,} of {total:,} weights subnormal ({100 * subnormal / total:.2f}%)")
    inputs = torch.randn(*args.input_shape)

    def seconds_per_step(model: torch.nn.Module) -> float:
        model = copy.deepcopy(model).train()  # each timing starts from the same weights and a fresh Adam
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)
        start = time.perf_counter()
        for _ in range(args.steps):
            loss = model(inputs).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - start) / args.steps

    cases = {(weights, flush): [] for weights in ("trained", "subnormals set to zero") for flush in (False, True)}
    models = {"trained": trained, "subnormals set to zero": zeroed}
    for _ in range(args.repeats):
        for weights, flush in cases:
            torch.set_flush_denormal(flush)
            cases[weights, flush].append(seconds_per_step(models[weights]))
    torch.set_flush_denormal(False)
    baseline = statistics.median(cases["subnormals set to zero", True])
    print(f"ms per training step, median of {args.repeats} (min), 1 thread, batch shape {tuple(args.input_shape)}:")
    for (weights, flush), times in cases.items():
        median = statistics.median(times)
        print(
            f"  {weights:<24} flush={'on ' if flush else 'off'} {1e3 * median:7.1f} ({1e3 * min(times):.1f})"
            f"  x{median / baseline:.2f}"
        )


if __name__ == "__main__":
    main()
