# Tighten: the Slack app, the scheduler and the worker (`tighten serve`; the jobs run in a child process).
#   docker build -t tighten .
#   docker run -v tighten-data:/data -v $PWD/config:/config:ro \
#     -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN -e AWS_REGION=us-east-1 tighten
# HTTP mode listens on 127.0.0.1 by default; inside a container, listen on every interface and publish the port:
#   docker run ... -p 3000:3000 -e SLACK_BOT_TOKEN -e SLACK_SIGNING_SECRET tighten --mode http --host 0.0.0.0
# AWS credentials come from boto3's default chain (ECS task role, instance profile, or AWS_* variables).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TIGHTEN_CONFIG=/config/tighten.yaml

WORKDIR /app
# The package and its dependencies (pyproject.toml); tests, bench and docs stay out (.dockerignore).
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install . \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin tighten \
 && mkdir -p /data /config \
 && chown tighten:tighten /data

# The SQLite store (usage index, proposals, before-images, work queue) lives on this volume;
# set `store.path: /data/tighten.db` in the config.
VOLUME ["/data"]
USER tighten
WORKDIR /data

# Healthy when the serve process wrote its heartbeat recently and the store opens.
HEALTHCHECK --interval=60s --timeout=10s --start-period=60s --retries=3 \
  CMD ["sh", "-c", "tighten serve --config \"$TIGHTEN_CONFIG\" --healthcheck"]

# `exec` makes `tighten` PID 1, so it receives SIGTERM from `docker stop` (it installs a handler for it).
ENTRYPOINT ["sh", "-c", "exec tighten serve --config \"$TIGHTEN_CONFIG\" \"$@\"", "tighten"]
STOPSIGNAL SIGTERM
