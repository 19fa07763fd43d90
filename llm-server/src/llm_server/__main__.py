"""The process: read settings, configure logging, serve with uvicorn, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
from types import FrameType

import uvicorn

from llm_server.app import create_app
from llm_server.config import ConfigError, load_settings
from llm_server.lifecycle import Lifecycle
from llm_server.models import load_catalog
from llm_server.observability.logging import configure_logging

logger = logging.getLogger("llm_server")


class DrainingServer(uvicorn.Server):
    """On the first SIGTERM/SIGINT: readiness goes 503, new requests are refused, the engine
    lets running streams finish (or cuts them in-band) within the drain timeout; then uvicorn
    stops. A second signal stops at once."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle) -> None:
        super().__init__(config)
        self._lifecycle = lifecycle
        self._draining: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining is not None:
            super().handle_exit(sig, frame)
            return
        logger.info("draining before shutdown", extra={"signal": sig})
        self._lifecycle.begin_drain()

        async def drain_then_exit() -> None:
            await self._lifecycle.stop()
            super(DrainingServer, self).handle_exit(sig, frame)

        self._draining = asyncio.get_running_loop().create_task(drain_then_exit())


def main() -> int:
    try:
        settings = load_settings()
        catalog = load_catalog(settings)  # LLM_MODELS_FILE: errors name the line
    except ConfigError as exc:
        print(f"llm-server: config error: {exc}", file=sys.stderr)
        return 1
    configure_logging(settings.log_level)
    app = create_app(settings, catalog=catalog)
    config = uvicorn.Config(
        app,
        host=settings.server_host,
        port=settings.server_port,
        log_config=None,
        access_log=False,  # RequestLogMiddleware writes one JSON line per request
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
        # Mutual TLS: a client without a certificate signed by this CA fails the handshake.
        ssl_ca_certs=str(settings.tls_client_ca_file) if settings.tls_client_ca_file else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if settings.tls_client_ca_file else ssl.CERT_NONE,
        timeout_graceful_shutdown=int(settings.drain_timeout_s) + 1,
    )
    DrainingServer(config, app.state.lifecycle).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
