"""The process: read settings, configure logging, serve with uvicorn, stop on SIGTERM."""

from __future__ import annotations

import sys

import uvicorn

from llm_server.app import create_app
from llm_server.config import ConfigError, load_settings


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"llm-server: config error: {exc}", file=sys.stderr)
        return 1
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.server_host,
        port=settings.server_port,
        log_level=settings.log_level,
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
        timeout_graceful_shutdown=int(settings.drain_timeout_s) or None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
