# syntax=docker/dockerfile:1
# Build stage: a wheel of the project and its dependencies in a virtual environment.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY adapters ./adapters
COPY service ./service
COPY migrations ./migrations
RUN /opt/venv/bin/pip install .

# Runtime stage: no compiler, no sources, a non-root user.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TENANTS_HOST=0.0.0.0 \
    TENANTS_PORT=8000 \
    TENANTS_VAR_DIR=/var/lib/tenants \
    TENANTS_AWS_MODE=aws
RUN groupadd --system --gid 10001 tenants \
 && useradd --system --uid 10001 --gid tenants --home-dir /var/lib/tenants --create-home tenants
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/tenants
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('TENANTS_PORT', '8000')}/health/live\", timeout=4)"]
# Migrations are a separate command: docker run IMAGE tenantctl db upgrade
ENTRYPOINT ["tenantctl"]
CMD ["serve"]
