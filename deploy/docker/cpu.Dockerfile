# syntax=docker/dockerfile:1
# fraudstream worker, CPU image: the base install (rules, the shipped bundle, ONNX Runtime).
# Build from the repository root: docker build -f deploy/docker/cpu.Dockerfile -t fraudstream:cpu .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stream ./stream
COPY model ./model
COPY build/tensorrt ./build/tensorrt
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# RocksDB state lives in a volume owned by an unprivileged user.
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/fraudstream fraudstream
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER fraudstream
WORKDIR /var/lib/fraudstream
ENV PYTHONUNBUFFERED=1 \
    FRAUDSTREAM_WEB_HOST=0.0.0.0 \
    FRAUDSTREAM_WEB_PORT=6066 \
    FRAUDSTREAM_DATA_DIR=/var/lib/fraudstream/state
VOLUME ["/var/lib/fraudstream/state"]
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=3s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/metrics', timeout=2)"]
ENTRYPOINT ["fraudstream"]
CMD ["worker"]
