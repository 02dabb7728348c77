# Image for the web, worker and beat processes of docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 OMS_VAR_DIR=/app/var
WORKDIR /app

# A Chinese font for label previews (printing/preview.py finds it by its usual path).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei \
 && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml README.md ./
RUN pip install --upgrade pip && pip install -e .

COPY . .
# Static files and compiled translations are baked into the image; both need no database.
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=build-only-not-used-at-runtime-0123456789abcdefghijklmnopqrstuvwxyz \
    DJANGO_ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput \
 && python manage.py compile_translations \
 && useradd --system --home /app oms && mkdir -p /app/var && chown -R oms /app/var

USER oms
EXPOSE 8000
# Bind, workers and the masked access log (phone numbers in query strings) come from oms/gunicorn_conf.py.
CMD ["gunicorn", "oms.wsgi:application", "--config", "python:oms.gunicorn_conf"]
