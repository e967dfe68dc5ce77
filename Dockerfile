FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY horus horus
COPY streams streams
COPY projections projections
COPY migrations migrations
COPY schemas schemas
RUN pip install --no-cache-dir .
# least privilege: the services never need root; .horus is the only place they write (Faust's data dir)
RUN useradd --system --uid 10001 --no-create-home horus && mkdir -p /app/.horus && chown horus /app/.horus
USER horus
ENTRYPOINT []
CMD ["horus", "--help"]
