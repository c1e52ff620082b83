# The sweeplab image: `sweeplab worker` for compose.yaml, and the MLflow tracking server beside it.
# CPU by default. CUDA: docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 -t sweeplab:cuda .
# (and run the workers with `gpus: all` or --gpus all; see the README, "Scaling out").
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SWEEPLAB_DATA_DIR=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

# torch first, from the chosen index, so that nothing below pulls a different build.
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY platform platform
COPY modules modules
COPY studies studies
RUN pip install -e .

# Never as root: the workers need no privileges, and a volume written by root would lock the others out.
RUN useradd --create-home --uid 1000 sweeplab && mkdir -p /data /artifacts && chown sweeplab /data /artifacts
USER sweeplab

ENTRYPOINT ["sweeplab"]
CMD ["--help"]
