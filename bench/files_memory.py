"""Memory of a data set read from a large file (``data: {name: files}``): check, convert, load, train-read.

Writes a PDEBench-layout HDF5 file of ``--megabytes`` (2D, two time steps, 256 x 256, float32) into a temporary
folder, then runs each stage in a fresh process and reports its peak resident memory and its anonymous memory
(the part that is the process's own: memory-mapped file pages are shared by every process that maps them):

- check: ``sweeplab validate``'s pass over every sample used (missing fields, shapes, non-finite values);
- convert: the first load, which converts the samples into the cache's float32 ``.npy`` files;
- load: a later load (what every trial's worker does);
- train-read: a load, the data module and a pass over the whole training split, as one training epoch reads it,
  with the normalisation statistics fitted first; ``imports`` is its baseline (torch and Lightning, no data).

    python bench/files_memory.py [--megabytes 800]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

STAGE = """
import re, resource, sys, time
from sweeplab.data import load_dataset
from sweeplab.data._files import FilesParams, file_problems
params = FilesParams.model_validate({params!r})
started = time.perf_counter()
if {stage!r} == "imports":  # the baseline of train-read: torch and Lightning loaded, no data
    from sweeplab.data.datamodule import OperatorDataModule
    from sweeplab_modules.tasks.operator import ChannelNormalizer
elif {stage!r} == "check":
    assert file_problems(params) == []
else:
    data = load_dataset("files", params.model_dump(mode="json"), data_dir={cache!r})
    if {stage!r} == "train-read":
        from sweeplab.data.datamodule import OperatorDataModule
        from sweeplab_modules.tasks.operator import ChannelNormalizer
        module = OperatorDataModule(data, batch_size=20)
        x, y = module.splits["train"]
        ChannelNormalizer(1).fit(x), ChannelNormalizer(1).fit(y)
        for batch in module.train_dataloader():
            pass
seconds = time.perf_counter() - started
anonymous = int(re.search(r"RssAnon:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, anonymous)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=int, default=800)
    args = parser.parse_args()
    import h5py
    import numpy as np

    sample_bytes = 2 * 256 * 256 * 4
    n = max(10, args.megabytes * 2**20 // sample_bytes)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "2D_big.h5"
        rng = np.random.default_rng(0)
        with h5py.File(path, "w") as handle:
            dataset = handle.create_dataset("tensor", shape=(n, 2, 256, 256), dtype=np.float32)
            for start in range(0, n, 100):
                dataset[start : start + 100] = rng.random((min(100, n - start), 2, 256, 256), dtype=np.float32)
        n_val = n_test = max(1, n // 15)
        params = {
            "path": str(path),
            "input": "tensor",
            "output": "tensor",
            "layout": "pdebench",
            "spatial_dims": 2,
            "input_steps": [0],
            "output_steps": [1],
            "n_train": n - n_val - n_test,
            "n_val": n_val,
            "n_test": n_test,
        }
        print(f"{path.stat().st_size / 2**20:.0f} MB HDF5 file, {n} samples")
        print(f"{'stage':<11} {'seconds':>8} {'peak RSS MB':>12} {'own (anonymous) MB':>19}")
        for stage in ("check", "convert", "load", "imports", "train-read"):
            code = STAGE.format(params=params, stage=stage, cache=str(Path(folder) / "cache"))
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            seconds, peak, anonymous = result.stdout.split()
            print(f"{stage:<11} {float(seconds):>8.1f} {peak:>12} {anonymous:>19}")


if __name__ == "__main__":
    main()
