"""``sweeplab predict``: a study's trained model on inputs from a file, outputs to a file."""

from __future__ import annotations

import sys
from pathlib import Path

from sweeplab.commands._exit import EXIT_INVALID, EXIT_OK


def predict_command(uri: str, input_path: Path, output_path: Path, tracking_uri: str | None) -> int:
    """Load the model at ``uri`` (``sweeplab.load_model``), predict on the array in ``input_path`` (physical units,
    (samples, channels, *grid)) and write the outputs in physical units to ``output_path``. Exit 2, nothing
    written, for a missing model, an unreadable file or inputs of the wrong shape or layout."""
    from sweeplab.serving import ArrayFileError, array_format, load_model, read_array, write_array

    try:
        array_format(output_path)
        inputs = read_array(input_path)
        model = load_model(uri, tracking_uri)
    except (ArrayFileError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    try:
        outputs = model.predict(inputs)
    except (ValueError, RuntimeError) as error:  # the layout check, or what the architecture itself refuses
        print(f"error: {input_path}: {error}", file=sys.stderr)
        return EXIT_INVALID
    write_array(output_path, outputs)
    print(f"{output_path}: outputs {outputs.shape} for inputs {inputs.shape} ({model.description.architecture})")
    return EXIT_OK
