FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY containers containers
COPY krp_project krp_project
COPY provisioning provisioning
COPY sandbox sandbox
COPY manage.py ./
# Static files are collected into the image (KRP_STATIC_ROOT) and served by gunicorn
# through WhiteNoise; collectstatic needs no database, broker or secret, so the build runs it
# with KrpSettings' defaults.
ENV KRP_STATIC_ROOT=/app/static
RUN pip install . && python manage.py collectstatic --noinput --verbosity 0 \
    && useradd --system krp
USER krp
EXPOSE 8000
CMD ["gunicorn", "krp_project.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
