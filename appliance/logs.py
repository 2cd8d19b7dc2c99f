"""Logging: standard error plus a rotating file, every message passed through the redactor
(ID and bank card numbers, passwords in URLs)."""

from __future__ import annotations

import logging
import logging.handlers
import sys

from appliance.config import Config
from appliance.personal import RedactingFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(config: Config) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(config.logging.level)
    log_file = config.log_file
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [
        logging.StreamHandler(sys.stderr),
        logging.handlers.RotatingFileHandler(log_file, maxBytes=10_000_000, backupCount=10, encoding="utf-8"),
    ]
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
