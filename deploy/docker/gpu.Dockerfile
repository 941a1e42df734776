# syntax=docker/dockerfile:1
# fraudstream worker, GPU image: the package with its `gpu` extra, NVIDIA's TensorRT and CUDA
# wheels from PyPI (no NVIDIA base image needed; the host's driver comes in through the
# NVIDIA container toolkit). The first start builds a TensorRT engine from the shipped ONNX
# graph and caches it under the state volume's home; later starts load it.
# Build from the repository root: docker build -f deploy/docker/gpu.Dockerfile -t fraudstream:gpu .
# Run: docker run --gpus all ... fraudstream:gpu worker [--model /models/current]
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stream ./stream
COPY model ./model
COPY build/tensorrt ./build/tensorrt
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/fraudstream fraudstream
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir "$(ls /wheels/fraudstream-*.whl)[gpu]" && rm -rf /wheels
USER fraudstream
WORKDIR /var/lib/fraudstream
ENV PYTHONUNBUFFERED=1 \
    FRAUDSTREAM_WEB_HOST=0.0.0.0 \
    FRAUDSTREAM_WEB_PORT=6066 \
    FRAUDSTREAM_DATA_DIR=/var/lib/fraudstream/state \
    XDG_CACHE_HOME=/var/lib/fraudstream/state/cache
VOLUME ["/var/lib/fraudstream/state"]
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=3s --start-period=180s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/metrics', timeout=2)"]
ENTRYPOINT ["fraudstream"]
CMD ["worker", "--backend", "tensorrt"]
