# One image for every `pulse` entry point: the ingest agents (`webhooks`, `replay`, `simulate`), the stream
# workers (`process`), the loader (`sink`), the notifier (`notify`) and the one-shot `topics` / `migrate`.
# docker-compose.yml picks the command; tests/unit/test_deploy_files.py keeps this file and the project in
# step. No Java here: the local broker (`pulse kafka`, deploy/kafka) is for development without Docker.

# Build stage: only our own wheel. The base image is pinned to a patch release; update it on purpose.
FROM python:3.11.17-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Every package comes from requirements/*.lock, checked against its hashes: the versions the tests ran with.
WORKDIR /src
COPY requirements requirements
RUN pip install --require-hashes -r requirements/build.lock
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY agents agents
COPY pipeline pipeline
COPY pulse pulse
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .


FROM python:3.11.17-slim-bookworm

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PULSE_STATE_DIR=/var/lib/pulse/state

COPY --from=build /wheels /wheels
COPY --from=build /src/requirements/runtime.lock /wheels/runtime.lock
RUN pip install --require-hashes -r /wheels/runtime.lock \
    && pip install --no-deps /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/pulse --shell /usr/sbin/nologin pulse \
    && mkdir -p /var/lib/pulse/state \
    && chown -R pulse:pulse /var/lib/pulse

# The stream workers (faust) keep a small data directory in the working directory: it must be writable.
WORKDIR /var/lib/pulse
USER pulse

# `pulse webhooks` (PULSE_WEBHOOKS__PORT; it listens on 127.0.0.1 unless PULSE_WEBHOOKS__HOST=0.0.0.0).
EXPOSE 8088

# No HEALTHCHECK here: what "healthy" means differs by command, so docker-compose.yml sets one per service.
ENTRYPOINT ["pulse"]
CMD ["--help"]
