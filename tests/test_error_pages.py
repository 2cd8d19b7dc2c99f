"""No error page is ever a framework's bare default: a view that fails gets the translated page,
and when even that cannot be rendered, a page in both languages from the app or, failing that,
from the server itself."""

from __future__ import annotations

import requests

from appliance.webserver import WebServer
from kiosk_ui.access import allow


def failing_route(app):
    @app.get("/console/boom")
    @allow("staff")
    def boom():
        raise FileNotFoundError("kiosk_ui/data/demo/recordings/x.mp4")

    app.testing = False  # as in production: the failure is answered, not raised into the test


def test_a_failing_view_gets_the_translated_page(app, login):
    failing_route(app)
    page = login("staff").get("/console/boom")
    text = page.get_data(as_text=True)
    assert page.status_code == 500 and "设备处理出错。请重试" in text
    assert "Internal Server Error" not in text and "<title>500 ·" in text


def test_when_the_error_page_fails_too_a_page_in_both_languages(app, login, monkeypatch):
    failing_route(app)
    client = login("staff")
    real = app.jinja_env.get_template

    def broken(name, *args, **kwargs):
        if name == "error.html":
            raise RuntimeError("the template cannot be read")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(app.jinja_env, "get_template", broken)
    page = client.get("/console/boom")
    text = page.get_data(as_text=True)
    assert page.status_code == 500 and "出错了" in text and "Something went wrong" in text
    assert "Internal Server Error" not in text


def test_the_server_answers_for_an_app_that_raises():
    def app(environ, start_response):
        raise RuntimeError("a bug")

    server = WebServer(app, "127.0.0.1", 0, threads=2)
    server.start()
    try:
        answer = requests.get(f"http://127.0.0.1:{server.port}/anything", timeout=10)
    finally:
        server.stop()
    assert answer.status_code == 500 and "出错了" in answer.text and "Something went wrong" in answer.text
    assert answer.headers["Content-Type"].startswith("text/html")
