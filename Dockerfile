# syntax=docker/dockerfile:1
#
# The web app's image: imageservice serve (Flask on waitress, in gunicorn's worker processes), non-root, read-only-root friendly.
#
# The base is pinned by its full version tag, pulled from the ECR Public mirror of the Docker
# official images (same image as docker.io/library/python, without Docker Hub's anonymous pull
# limits that shared CodeBuild hosts run into). A digest pin
# (python:3.11.14-slim-bookworm@sha256:...) would be stronger still; add it where the registry
# can be queried (`docker buildx imagetools inspect <image>`).

# ---------------------------------------------------------------- build: a venv with the app
FROM public.ecr.aws/docker/library/python:3.11.14-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies come from the hashed lock (requirements-app.lock, made by `make lock`): the
# versions the tests ran. Every one ships manylinux wheels, so no compiler is needed; pip
# byte-compiles while installing, which a read-only root needs. The lock is copied before the
# code so a code change reuses the dependency layer.
COPY requirements-app.lock requirements-app.lock
RUN pip install --no-cache-dir --require-hashes -r requirements-app.lock
COPY pyproject.toml README.md ./
COPY application/ application/
# The app itself, built by the locked setuptools and adding no dependency of its own.
RUN pip install --no-cache-dir --no-deps --no-build-isolation .

# ---------------------------------------------------------------- runtime: only the venv
FROM public.ecr.aws/docker/library/python:3.11.14-slim-bookworm

LABEL org.opencontainers.image.title="imageservice" \
      org.opencontainers.image.description="Cloud Image Service web app (Flask on waitress, gunicorn workers)"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    IMAGESERVICE_DATA_DIR=/data

# A fixed numeric id, so task definitions and volume permissions can name it ("10001").
RUN groupadd --system --gid 10001 imageservice \
 && useradd --system --uid 10001 --gid imageservice --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin imageservice \
 && mkdir /data \
 && chown 10001:10001 /data

COPY --from=build /opt/venv /opt/venv

WORKDIR /data
USER 10001:10001
EXPOSE 8000

# Python instead of curl: the slim image has no curl and needs none.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

# The same server as `make run` (docs/SERVER.md): one process, task threads, PORT from the environment.
CMD ["imageservice", "serve", "--host", "0.0.0.0"]
