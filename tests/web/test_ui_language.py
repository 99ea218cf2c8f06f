"""The widget's interface in the shopper's language (server-rendered; no browser, no stack needed)."""
from __future__ import annotations

import json
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from crm.i18n.catalog import Texts
from channels.web.api import router

app = FastAPI()
app.include_router(router)
client = TestClient(app)


def ui(page: str) -> dict:
    return json.loads(re.search(r'data-ui="([^"]*)"', page).group(1).replace("&#34;", '"').replace("&quot;", '"'))


@pytest.mark.parametrize("language", ["en", "es", "pt", "fr", "de", "it", "zh", "ja", "id", "ar", "tr", "nl"])
def test_chat_page_in_every_language(language):
    resp = client.get(f"/chat?locale={language}")
    assert resp.status_code == 200 and resp.headers["content-language"] == language
    page = resp.text
    strings = Texts(language).raw("ui")
    assert f'<html lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}">' in page
    assert f"<h1 id=\"chat-title\">{strings['heading']}</h1>" in page
    assert f'placeholder="{strings["placeholder"]}"' in page
    assert ui(page)["send"] == strings["send"]
    assert "Content-Security-Policy" in resp.headers  # still no inline script: strings travel in data-ui


def test_accept_language_when_the_shop_gives_no_locale():
    page = client.get("/chat", headers={"Accept-Language": "ko-KR,ko;q=0.9,de;q=0.8,en;q=0.5"}).text
    assert '<html lang="de" dir="ltr">' in page  # Korean is not served: the next one the browser accepts
    assert client.get("/chat", headers={"Accept-Language": "xx"}).text.count('lang="en"') == 1
    # a bogus ?locale= is ignored, never reflected
    page = client.get('/chat?locale="><script>', headers={"Accept-Language": "ja"}).text
    assert '<html lang="ja"' in page and "<script>" not in page.split("<body")[1]


def test_widget_script_carries_the_launcher_labels():
    script = client.get("/widget.js").text
    labels = json.loads(re.search(r"var LABELS = (\{.*?\});", script).group(1))
    assert labels["ar"]["launcher"] == Texts("ar").raw("ui")["launcher"]
    assert set(labels) >= {"en", "es", "zh", "ja", "ar"}
    assert "/*LABELS*/" not in script
