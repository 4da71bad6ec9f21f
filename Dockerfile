# Slim runtime image; the install step is the README's quick start (`pip install .`).
FROM python:3.11-slim

LABEL org.opencontainers.image.title="monitor" \
      org.opencontainers.image.description="Alerts on new government internet-control measures in the news"

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MALLOC_ARENA_MAX=2 \
    MONITOR_CONFIG=/etc/monitor/feeds.yaml \
    MONITOR_DB_URL=sqlite:////data/monitor.db

WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY alembic ./alembic
RUN pip install --no-cache-dir . && rm -rf /src

COPY feeds.yaml /etc/monitor/feeds.yaml
RUN useradd --system --uid 10001 --home /data monitor && mkdir -p /data && chown monitor /data
USER monitor
WORKDIR /data
VOLUME ["/data"]

HEALTHCHECK --interval=5m --timeout=20s --start-period=2m CMD ["monitor", "healthcheck"]
ENTRYPOINT ["monitor"]
CMD ["run"]
