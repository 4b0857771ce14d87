# The one image recipe of every Akros deployable (each service, and kubesim for compose): they
# differ only in the uv package installed and the console script it runs, the two build
# arguments. Build from the repository root; compose.yaml gives each service's pair, e.g.
#   docker build --build-arg AKROS_PACKAGE=akros-k8s-worker \
#                --build-arg AKROS_ENTRYPOINT=akros-k8s-worker -t akros/k8s-worker .
# Stage 1 installs only that package and its dependencies from uv.lock into /app/.venv;
# stage 2 carries that virtual environment alone and runs it as an unprivileged user.
FROM python:3.11-slim-bookworm AS build
ARG AKROS_PACKAGE
RUN test -n "$AKROS_PACKAGE" || { echo "--build-arg AKROS_PACKAGE=<uv package> is required" >&2; exit 1; }
RUN pip install --no-cache-dir "uv>=0.8,<0.14"
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs ./libs
COPY services ./services
RUN uv sync --frozen --no-dev --no-editable --package "$AKROS_PACKAGE"

FROM python:3.11-slim-bookworm
ARG AKROS_PACKAGE
ARG AKROS_ENTRYPOINT
LABEL io.akros.package="$AKROS_PACKAGE" io.akros.entrypoint="$AKROS_ENTRYPOINT"
# /var/lib/akros belongs to the service's user, so a volume mounted there (the gateway's
# first admin token in compose) starts out writable by it.
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin akros \
    && install -d -o 10001 -g 10001 /var/lib/akros
COPY --from=build /app/.venv /app/.venv
# ENTRYPOINT's exec form expands no variables, and its shell form leaves /bin/sh as PID 1,
# which does not pass SIGTERM on. So the chosen script is linked to a fixed path here and the
# container executes it directly: its interpreter, the venv's Python, is PID 1 and gets the
# signals. A script the package does not install fails the build, not the container's start.
RUN if [ -z "$AKROS_ENTRYPOINT" ] || [ ! -f "/app/.venv/bin/$AKROS_ENTRYPOINT" ]; then \
        echo "--build-arg AKROS_ENTRYPOINT: '$AKROS_ENTRYPOINT' is not a script of $AKROS_PACKAGE" >&2; \
        exit 1; \
    fi \
    && ln -s "/app/.venv/bin/$AKROS_ENTRYPOINT" /app/entrypoint
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1
USER 10001:10001
ENTRYPOINT ["/app/entrypoint"]
