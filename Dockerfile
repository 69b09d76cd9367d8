FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY containers containers
COPY krp_project krp_project
COPY provisioning provisioning
COPY sandbox sandbox
COPY manage.py gunicorn.conf.py ./
# Static files are collected into the image (KRP_STATIC_ROOT) and served by gunicorn
# through WhiteNoise; collectstatic needs no database, broker or secret, so the build runs it
# with KrpSettings' defaults.
ENV KRP_STATIC_ROOT=/app/static
# Every process's metrics (docs/metrics.md); docker-compose mounts a shared volume here,
# which takes this directory's owner on first use.
ENV KRP_METRICS_DIR=/var/lib/krp/metrics
RUN pip install . && python manage.py collectstatic --noinput --verbosity 0 \
    && useradd --system krp \
    && rm -rf "$KRP_METRICS_DIR" && mkdir -p "$KRP_METRICS_DIR" \
    && chown krp "$KRP_METRICS_DIR"
USER krp
EXPOSE 8000
# gunicorn reads ./gunicorn.conf.py (its child_exit hook tidies the metrics directory).
CMD ["gunicorn", "krp_project.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
