# One image for every Hopper process: `hopper serve` (the default), `hopper worker`,
# `hopper scheduler` and `hopper migrate`. docker-compose.yml shows how they fit together.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 hopper \
    && useradd --system --uid 10001 --gid hopper --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin hopper

WORKDIR /app

COPY pyproject.toml requirements.lock README.md ./
COPY api/ api/
COPY workers/ workers/
COPY domain/ domain/
COPY hopper/ hopper/
COPY migrations/ migrations/

# The lock pins the whole tree; as constraints it only pins what the project actually needs, so
# the development tools listed in it stay out of the image.
RUN pip install --upgrade pip==25.3 \
    && pip install -c requirements.lock . \
    && pip check \
    && rm -rf build ./*.egg-info \
    && mkdir var \
    && chown hopper:hopper var

# The code stays owned by root and read-only to the process; only var/ (used by the embedded
# default alone) is writable.
USER hopper

# Inside a container the API must listen on every interface; outside one it defaults to loopback.
ENV HOST=0.0.0.0 \
    PORT=8000
EXPOSE 8000

# The slim image has no curl. Non-web processes (worker, scheduler, migrate) turn this off in
# docker-compose.yml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"

ENTRYPOINT ["hopper"]
CMD ["serve"]
