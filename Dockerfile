FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY containers containers
COPY krp_project krp_project
COPY provisioning provisioning
COPY sandbox sandbox
COPY manage.py ./
RUN pip install . && useradd --system krp
USER krp
EXPOSE 8000
CMD ["gunicorn", "krp_project.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
