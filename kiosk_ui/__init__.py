"""The Flask app: gate kiosk, staff console, supervisor review, evaluation screens, JSON API.

For now it serves the appliance's status page (``/``) and its JSON twin (``/api/v1/status``);
the audiences' blueprints arrive with later issues. Services reach views through
``app.extensions["site"]``, never module globals.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from kiosk_ui.status import bp as status_bp


def create_app(site: Any, test_config: dict[str, Any] | None = None) -> Flask:
    from appliance.keys import web_secret

    app = Flask(__name__)
    secret = site.config.web.secret_key or web_secret(site.config.paths.keys_dir)
    app.config.update(SECRET_KEY=secret, JSON_AS_ASCII=False)
    if test_config:
        app.config.update(test_config)
    app.extensions["site"] = site
    app.register_blueprint(status_bp)

    @app.after_request
    def security_headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return app
