# syntax=docker/dockerfile:1
# fraudstream worker, GPU image: NVIDIA's TensorRT container (CUDA, TensorRT and its Python
# bindings) with fraudstream in a virtual environment that sees the image's tensorrt module.
# Build from the repository root: docker build -f deploy/docker/gpu.Dockerfile -t fraudstream:gpu .
# Run with the NVIDIA container toolkit: docker run --gpus all ... fraudstream:gpu worker --model /models/current
# 25.01 is Ubuntu 24.04 with Python 3.12 (fraudstream needs 3.11 or newer) and TensorRT 10.8.
ARG TENSORRT_IMAGE=nvcr.io/nvidia/tensorrt:25.01-py3

FROM ${TENSORRT_IMAGE}
# Ubuntu's Python refuses system-wide pip installs (PEP 668): use a venv that still sees the
# image's tensorrt bindings.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv --system-site-packages /opt/fraudstream \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/fraudstream fraudstream
ENV PATH=/opt/fraudstream/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stream ./stream
COPY model ./model
RUN pip install --no-cache-dir . && rm -rf /src
USER fraudstream
WORKDIR /var/lib/fraudstream
ENV PYTHONUNBUFFERED=1 \
    FRAUDSTREAM_WEB_HOST=0.0.0.0 \
    FRAUDSTREAM_WEB_PORT=6066 \
    FRAUDSTREAM_DATA_DIR=/var/lib/fraudstream/state
VOLUME ["/var/lib/fraudstream/state"]
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/metrics', timeout=2)"]
ENTRYPOINT ["fraudstream"]
CMD ["worker"]
