"""``sweeplab ui``: the MLflow UI (MLflow's own server) against a study's tracking store."""

from __future__ import annotations

import socket
import subprocess
import sys


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ui_command(tracking_uri: str, host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        tracking_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def serve(tracking_uri: str, host: str = "127.0.0.1", port: int = 5000) -> int:
    """Start the UI and wait for it; Ctrl-C stops it."""
    from sweeplab._runner import prepare_sqlite

    prepare_sqlite(tracking_uri)
    port = port or free_port(host)
    print(f"MLflow UI: http://{host}:{port}  (tracking store {tracking_uri}; Ctrl-C stops it)", flush=True)
    process = subprocess.Popen(ui_command(tracking_uri, host, port))
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait()
