"""Experts' and the chair's evaluation terminals (评标终端). The screens arrive with the
evaluation issue; a registered terminal shows that it is ready and connected."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from kiosk_ui.access import allow

bp = Blueprint("evaluation", __name__, url_prefix="/evaluation")


@bp.get("/")
@allow("kiosk")
def home() -> Any:
    return render_template("evaluation_home.html")
