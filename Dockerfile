# The wallet service: `wallet serve` on port 8080, its data (database, keys, SMS outbox) in /data.
#   docker build -t personal-budget-wallet .
#   docker run -d --name wallet -p 8080:8080 -v wallet-data:/data --stop-timeout 30 personal-budget-wallet
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the package itself (its dependencies are already there).
COPY README.md ./
COPY wallet ./wallet
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf /app/build /app/*.egg-info

# A user of its own, owning only the data volume.
RUN groupadd --system --gid 10001 wallet \
    && useradd --system --no-log-init --uid 10001 --gid wallet --home-dir /data --shell /usr/sbin/nologin wallet \
    && mkdir -p /data \
    && chown wallet:wallet /data

# No secret is baked in: the signing key and the HMAC secret are created in /data on first start
# (or mounted there). Every other setting keeps its default unless given with -e.
ENV WALLET_DB=/data/wallet.db \
    WALLET_SIGNING_KEY=/data/signing-key.pem \
    WALLET_SMS_OUTBOX=/data/sms-outbox.jsonl \
    WALLET_HOST=0.0.0.0 \
    WALLET_PORT=8080 \
    WALLET_LOG_FORMAT=json \
    WALLET_SHUTDOWN_TIMEOUT_SECONDS=20

VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080

# No curl in the slim image: Python asks /healthz; a non-2xx answer or no answer fails.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WALLET_PORT', '8080') + '/healthz', timeout=4)"]

# SIGTERM: the listener closes, requests in flight get WALLET_SHUTDOWN_TIMEOUT_SECONDS, queued
# writes are committed, then the process exits. Give `docker stop` more time than that
# (--stop-timeout 30, or stop_grace_period in compose); its default of 10 s is too short.
STOPSIGNAL SIGTERM
ENTRYPOINT ["wallet"]
CMD ["serve"]
