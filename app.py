"""Korean Voice Q&A — the composition root.

    python app.py                      page on 0.0.0.0:7860, REST routes under /api
    python app.py --ssl                the same over HTTPS (self-signed cert made once in DATA_DIR)
    python app.py --api-only --port 5000   only the REST routes, at the root (the seed's API server)

Settings come from the environment and an optional .env (see README); with API_URL set, the
page talks to that remote REST API instead of running the engines in this process.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from typing import Callable

from voiceqna.config import Settings
from voiceqna.errors import VoiceQnAError
from voiceqna.ports import VoiceChat

logger = logging.getLogger("voiceqna")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=None, help="default: HOST, else 0.0.0.0 (every interface)")
    parser.add_argument("--port", type=int, default=None, help="default: PORT, else 7860 (page) or 5000 (--api-only)")
    parser.add_argument("--api-only", action="store_true", help="serve only the REST routes, at the root")
    parser.add_argument("--ssl", action="store_true", help="serve HTTPS so browsers allow the microphone")
    parser.add_argument("--ssl-certfile", help="your certificate (PEM); default: a self-signed one")
    parser.add_argument("--ssl-keyfile", help="its private key (PEM)")
    parser.add_argument("--no-warm-up", action="store_true", help="skip the warm-up transcription at start")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def build_service(settings: Settings, warm_up: bool = True) -> VoiceChat:
    """The in-process ChatService, or a client of a remote API when API_URL is set."""
    if settings.api_url:
        from voiceqna.remote import RemoteService

        return RemoteService(settings.api_url, api_key=settings.api_key)
    from voiceqna.compose import build_service as build_local

    service = build_local(settings)
    if warm_up:
        service.warm_up()
    return service


def build_app(settings: Settings, service: VoiceChat, api_only: bool):
    """One ASGI app: the REST routes at the root (api_only) or the page at / with the routes at /api.
    Either way the service's engines are closed when the server shuts down."""
    from voiceqna.api import create_api

    api = create_api(service, settings)
    if api_only:
        return api
    from voiceqna.page import PageHandlers, build_page, mount_options

    handlers = PageHandlers(service, hands_free=settings.endpointer_options)
    page = build_page(service, settings, handlers)
    return mount_page(api, page, settings, service, mount_options(settings), on_shutdown=handlers.close)


def mount_page(api, page, settings: Settings, service: VoiceChat, options: dict | None = None,
               on_shutdown: Callable[[], None] | None = None):
    """The page at / and the REST routes at /api. With API_KEY set, neither answers without it:
    the routes want it in a header, the page asks for it in its login form (any user name, the
    key as password) before its own API (/gradio_api/…) answers. At shutdown `on_shutdown` runs
    (the page's hands-free sessions end), then the service's engines are closed."""
    from contextlib import asynccontextmanager

    import gradio as gr
    from fastapi import FastAPI
    from fastapi.concurrency import run_in_threadpool

    @asynccontextmanager
    async def lifespan(app):  # a mounted app's own lifespan does not run: close the engines here
        yield
        if on_shutdown is not None:
            await run_in_threadpool(on_shutdown)
        await run_in_threadpool(service.close)

    root = FastAPI(title="Korean Voice Q&A", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    root.mount("/api", api)
    no_docs = {"openapi_url": None, "docs_url": None, "redoc_url": None}  # Gradio's own route list stays private
    return gr.mount_gradio_app(root, page, path="/", auth=page_login(settings.api_key), app_kwargs=no_docs,
                               **(options or {}))


def page_login(api_key: str):
    """The page's login check (None: no login, when API_KEY is unset)."""
    if not api_key:
        return None
    return lambda username, password: secrets.compare_digest(str(password).encode(), api_key.encode())


def listen_address(args: argparse.Namespace, settings: Settings) -> tuple[str, int]:
    """Flags win over HOST/PORT; the defaults, 0.0.0.0:7860, are what a Hugging Face Space expects."""
    return args.host or settings.host, args.port or settings.port or (5000 if args.api_only else 7860)


def ssl_options(args: argparse.Namespace, settings: Settings, port: int) -> dict[str, str]:
    """uvicorn's ssl_certfile/ssl_keyfile for --ssl (made once in DATA_DIR unless given); {} for HTTP."""
    if not (args.ssl or args.ssl_certfile or args.ssl_keyfile):
        return {}
    from voiceqna.tls import ensure_certificate, machine_names

    try:
        certfile, keyfile = ensure_certificate(settings.data_dir, args.ssl_certfile, args.ssl_keyfile)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"app.py: {exc}") from None
    if not args.ssl_certfile:
        lan = [a for a in machine_names()[1] if a not in ("127.0.0.1", "::1")]
        logger.info("Self-signed certificate %s: on other machines open %s and accept the browser's warning",
                    certfile, ", ".join(f"https://{a}:{port}" for a in lan) or f"https://<this machine>:{port}")
    return {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        host, port = listen_address(args, settings)
        ssl = ssl_options(args, settings, port)  # before the engines load: a wrong flag fails at once
        service = build_service(settings, warm_up=not args.no_warm_up)
    except (ValueError, VoiceQnAError) as exc:  # a setting or an engine that cannot start: say the fix, no traceback
        logger.error("Cannot start: %s", exc)
        sys.exit(2)
    app = build_app(settings, service, args.api_only)
    import uvicorn

    scheme = "https" if ssl else "http"
    logger.info("Serving on %s://%s:%d%s", scheme, host, port, "" if args.api_only else " (REST under /api)")
    uvicorn.run(app, host=host, port=port, log_level=args.log_level.lower(), **ssl)


if __name__ == "__main__":
    main()
