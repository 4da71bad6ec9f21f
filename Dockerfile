# Slim runtime image; the install step is the README's quick start with the PostgreSQL
# driver (`pip install ".[postgres]"`), so one image runs on SQLite or PostgreSQL (compose.yaml).
FROM python:3.11-slim

LABEL org.opencontainers.image.title="monitor" \
      org.opencontainers.image.description="Alerts on new government internet-control measures in the news"

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MALLOC_ARENA_MAX=2 \
    MONITOR_CONFIG=/etc/monitor/feeds.yaml \
    MONITOR_DB_URL=sqlite:////data/monitor.db \
    MONITOR_LISTEN=0.0.0.0:8080

WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY alembic ./alembic
RUN pip install --no-cache-dir ".[postgres]" && rm -rf /src

COPY feeds.yaml /etc/monitor/feeds.yaml
RUN useradd --system --uid 10001 --home /data monitor && mkdir -p /data && chown monitor /data
USER monitor
WORKDIR /data
VOLUME ["/data"]

# The dashboard, API, feeds out and /metrics; every route but health asks for a token.
EXPOSE 8080
HEALTHCHECK --interval=1m --timeout=10s --start-period=2m \
    CMD ["monitor", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["monitor"]
CMD ["run"]
