# syntax=docker/dockerfile:1
# variant-proxy in a container: the proxy only, no model server inside.
#
#   docker build -t variant-proxy .
#
# Model servers on the host (Ollama, LM Studio, llama-server, vLLM):
#   Linux, simplest - share the host's network, so 127.0.0.1 in the config is the host (and
#   listen on the host's loopback only, as on bare metal):
#     docker run -d --name variant-proxy --network host -e VARIANT_PROXY_HOST=127.0.0.1 \
#       -v /etc/variant-proxy:/etc/variant-proxy:ro variant-proxy
#   Any OS, bridged - publish the port and write http://host.docker.internal:11434 in the config
#   (on Linux the name needs --add-host; the model server must listen beyond 127.0.0.1, e.g.
#   OLLAMA_HOST=0.0.0.0):
#     docker run -d --name variant-proxy -p 127.0.0.1:8780:8780 \
#       --add-host=host.docker.internal:host-gateway \
#       -v "$PWD/router.yaml:/etc/variant-proxy/router.yaml:ro" variant-proxy
# Stop with `docker stop -t 45` (compose: stop_grace_period: 45s): the proxy drains in-flight
# requests for up to 30 s on SIGTERM, longer than Docker's default 10 s grace period.
# docs/deployment.md has the details, and a compose file.

# --- builder: a wheel of the project and of every dependency ---------------------------------
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
RUN pip wheel --wheel-dir /wheels .

# --- runtime: only the wheels installed, nothing to build with ------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VARIANT_PROXY_HOST=0.0.0.0 \
    VARIANT_PROXY_ALLOW_REMOTE=1 \
    VARIANT_PROXY_PORT=8780 \
    VARIANT_PROXY_CONFIG=/etc/variant-proxy/router.yaml
# In a bridged container 0.0.0.0 is reachable only through the ports you publish, so the
# proxy's refusal to listen beyond loopback without API keys is lifted (ALLOW_REMOTE) and the
# guard is `-p 127.0.0.1:8780:8780`. Publishing wider? Set server.auth.api_keys_env.
# The wheels are bind-mounted from the builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/variant_proxy-*.whl \
    && useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /var/lib/variant-proxy --shell /usr/sbin/nologin variant-proxy \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/variant-proxy \
    && install -d -m 0755 /etc/variant-proxy
# A default config (Ollama and LM Studio on 127.0.0.1: right under --network host). Mount your
# own over it; a named volume on /etc/variant-proxy starts out with this copy.
COPY --chmod=0644 config/router.yaml /etc/variant-proxy/router.yaml
# The working directory is the state directory: the default `server.state_dir: .variant-proxy`
# (pin lockfile, benchmark results, managed backend logs) lands in the volume.
WORKDIR /var/lib/variant-proxy
VOLUME ["/etc/variant-proxy", "/var/lib/variant-proxy"]
USER 10001:10001
EXPOSE 8780
# slim has no curl: ask /health with the interpreter that is already here.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('VARIANT_PROXY_PORT', '8780'), timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["variant-proxy"]
CMD ["serve", "--config", "/etc/variant-proxy/router.yaml"]
