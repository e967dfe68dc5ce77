FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY horus horus
COPY streams streams
COPY projections projections
COPY migrations migrations
COPY schemas schemas
RUN pip install --no-cache-dir .
ENTRYPOINT []
CMD ["horus", "--help"]
