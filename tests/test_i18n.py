"""Chinese first, English selectable per user, per kiosk, and before login per browser; the
catalogue covers every text on the screens."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "kiosk_ui" / "translations"))

import build  # noqa: E402  (kiosk_ui/translations/build.py)

from tests.helpers import csrf_token  # noqa: E402


def test_catalogue_translates_every_screen_text_and_nothing_else():
    texts = {m.id for m in build.extract() if m.id}
    catalogue = build.load()
    translated = {m.id for m in catalogue if m.id and m.string and not m.fuzzy}
    assert texts - translated == set(), "texts without a Chinese translation (run build.py update)"
    assert translated - texts == set(), "translations of texts the screens no longer have"
    assert build.problems(catalogue) == []


def test_compiled_catalogue_is_current():
    po, mo = build.PO, build.PO.with_suffix(".mo")
    assert mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime, "run `make translations`"


def switch(client, lang, page="/login"):
    token = csrf_token(client.get(page))
    return client.post("/lang", data={"lang": lang, "next": page, "csrf_token": token})


def test_anonymous_default_is_chinese_and_english_is_one_click_away(app):
    client = app.test_client()
    assert "<h1>登录</h1>" in client.get("/login").get_data(as_text=True)
    switch(client, "en")
    page = client.get("/login").get_data(as_text=True)
    assert "<h1>Log in</h1>" in page and 'lang="en"' in page


def test_a_users_choice_follows_the_user(login, app):
    client = login("staff")
    assert "现场概况" in client.get("/console/").get_data(as_text=True)
    switch(client, "en", "/console/")
    assert "Site overview" in client.get("/console/").get_data(as_text=True)
    again = login("staff")  # a new browser, same account
    assert "Site overview" in again.get("/console/").get_data(as_text=True)
    assert "现场概况" in login("admin").get("/console/").get_data(as_text=True)  # others unaffected


def test_a_kiosks_choice_follows_the_kiosk(login):
    kiosk = login("kiosk")
    assert "请将身份证放在阅读器上" in kiosk.get("/kiosk/").get_data(as_text=True)
    switch(kiosk, "en", "/kiosk/")
    assert "Please place your ID card on the reader" in kiosk.get("/kiosk/").get_data(as_text=True)


def test_default_language_is_configurable(web_site):
    from kiosk_ui import create_app

    web_site.config = web_site.config.model_copy(update={"web": web_site.config.web.model_copy(update={"default_language": "en"})})
    assert "<h1>Log in</h1>" in create_app(web_site).test_client().get("/login").get_data(as_text=True)


def test_bad_language_is_refused(app):
    client = app.test_client()
    switch(client, "fr")
    assert "<h1>登录</h1>" in client.get("/login").get_data(as_text=True)
