# The image of both daemons. It has no entrypoint: the container's command picks the daemon,
#   vaclab-scheduler [flags]     or     vaclab-accounting [flags]
# as helm/vaclab-bandwidth does. Build from the repository root: docker build -t IMAGE .
#
# The base is pinned to an exact Python patch release on Debian bookworm. Pin its digest too
# (python:3.11.13-slim-bookworm@sha256:...) where the registry can be asked for it.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Every package setup.cfg lists (.dockerignore keeps tests, helm/ and caches out); only the
# installed virtualenv reaches the final image.
COPY . .
# The package and its runtime dependencies only: no test or localcluster extras.
RUN python -m venv /opt/vaclab \
    && /opt/vaclab/bin/pip install . \
    && /opt/vaclab/bin/pip uninstall --yes pip setuptools wheel

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="vaclab-bandwidth-scheduler" \
      org.opencontainers.image.description="vaclab-scheduler and vaclab-accounting: network bandwidth as a schedulable resource" \
      org.opencontainers.image.source="https://github.com/vacp2p/vaclab-bandwidth-scheduler" \
      org.opencontainers.image.licenses="Apache-2.0"
# Bytecode was compiled at install time; the root filesystem is read-only in the chart.
ENV PATH=/opt/vaclab/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/vaclab /opt/vaclab
# A numeric UID (and GID), so that runAsNonRoot can check it without an /etc/passwd entry.
USER 65532:65532
EXPOSE 8080 8081
CMD ["vaclab-scheduler"]
