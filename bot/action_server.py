"""The action server: rasa-sdk's own server, answering only Rasa.

``python -m bot.action_server --port 5055`` serves the actions package like ``python -m rasa_sdk``, but
every request except ``/health`` must carry ``X-Crossdesk-Action-Secret: $CROSSDESK_ACTION_SECRET`` (Rasa
sends it: ``action_endpoint.headers`` in the generated endpoints.yml), and it binds to 127.0.0.1 unless
SANIC_HOST says otherwise (the private compose network).
"""
from __future__ import annotations

import argparse
import hmac
import logging
from functools import partial

from sanic import Sanic, response
from sanic.worker.loader import AppLoader

from crm.config import get_settings

SECRET_HEADER = "X-Crossdesk-Action-Secret"
log = logging.getLogger("crossdesk.actions")


def _secret() -> str:
    value = get_settings().action_secret
    secret = value.get_secret_value() if value is not None else ""
    if len(secret) < 16:
        raise SystemExit("CROSSDESK_ACTION_SECRET must be set (16+ characters): the action server answers only "
                         "callers that know it (Rasa, through action_endpoint.headers in endpoints.yml)")
    return secret


def create_app(actions_package: str = "actions") -> Sanic:
    from rasa_sdk.endpoint import create_app_for_serve
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package(actions_package)
    app = create_app_for_serve(executor, cors_origins=None)
    expected = _secret().encode()

    @app.on_request
    async def only_rasa(request):
        if request.path == "/health":
            return None
        if not hmac.compare_digest((request.headers.get(SECRET_HEADER) or "").encode(), expected):
            return response.json({"error": "unauthorized"}, status=401)
        return None

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--actions", default="actions")
    args = parser.parse_args()
    _secret()
    logging.basicConfig(level=logging.INFO)
    loader = AppLoader(factory=partial(create_app, args.actions))
    app = loader.load()
    app.prepare(host=get_settings().actions_host, port=args.port, single_process=True,
                access_log=False, motd=False)
    Sanic.serve_single(primary=app)


if __name__ == "__main__":
    main()
