"""The web chat in a real (Debian) Chromium against the real stack: flows, quick replies, reload, XSS, phone
viewport, keyboard, right-to-left locales and the cross-origin embed script."""
from __future__ import annotations

import http.server
import re
import threading

import httpx
import pytest
from playwright.sync_api import expect
from tests.e2e.conftest import staff_api

pytestmark = pytest.mark.e2e
BOT = ".msg.bot .bubble"
SHOPPER = ".msg.shopper .bubble"


def open_chat(new_page, live_stack, **context_options):
    page = new_page(**context_options)
    page.goto(f"{live_stack.app_url}/chat")
    expect(page.locator("#chat-status")).to_have_text("")  # connected
    return page


def say(page, text: str):
    """Type and send `text`; return the locator of the bot's last bubble once a new reply arrived."""
    bots = page.locator(BOT)
    before = bots.count()
    page.fill("#input", text)
    page.click("#send")
    expect(bots.nth(before)).to_be_attached(timeout=60_000)  # at least one new reply
    # the bot may send more than one message per turn; wait until typing has stopped
    expect(page.locator("#typing")).to_be_hidden(timeout=60_000)
    return bots.last


def session_id(page) -> str:
    return page.evaluate("localStorage.getItem('crossdesk.session')")


def test_main_flow_tracks_an_order(new_page, live_stack, tmp_path):
    page = open_chat(new_page, live_stack)
    expect(page.locator("html")).to_have_attribute("lang", re.compile(r"^en"))
    expect(say(page, "where is my order")).to_contain_text("order number")
    expect(say(page, "CD-100002")).to_contain_text("email address or phone number")
    say(page, "oliver.bennett@example.com")
    expect(page.locator(".messages")).to_contain_text("import customs")
    # shopper bubbles, timestamps (browser's local time), a clickable http(s) link built safely
    expect(page.locator(SHOPPER)).to_have_count(3)
    expect(page.locator(".msg time").first).to_have_text(re.compile(r"\d{1,2}[:.]\d{2}"))
    link = page.locator(".msg.bot a").first
    expect(link).to_have_attribute("href", re.compile(r"^https?://"))
    expect(link).to_have_attribute("rel", re.compile("noopener"))
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", session_id(page))
    page.screenshot(path=str(tmp_path / "web-chat-main-flow.png"), full_page=True)
    print("screenshot:", tmp_path / "web-chat-main-flow.png")


def test_quick_reply_button(new_page, live_stack):
    page = open_chat(new_page, live_stack)
    say(page, "hi")
    button = page.get_by_role("button", name="Track my order")
    expect(button).to_be_visible()
    button.click()
    expect(page.locator(SHOPPER).last).to_have_text(re.compile("Track my order$"))
    expect(page.locator(BOT).last).to_contain_text("order number", timeout=60_000)
    expect(page.get_by_role("button", name="Track my order")).to_have_count(0)  # buttons gone after use
    expect(page.locator("#input")).to_be_focused()  # focus not lost with the buttons


def test_reload_restores_transcript_and_continues(new_page, live_stack):
    page = open_chat(new_page, live_stack)
    sid = session_id(page)
    expect(say(page, "where is my order")).to_contain_text("order number")
    page.reload()
    expect(page.locator(SHOPPER)).to_have_count(1)
    expect(page.locator(SHOPPER).first).to_contain_text("where is my order")
    expect(page.locator(BOT).last).to_contain_text("order number")
    expect(page.locator("#chat-status")).to_have_text("")
    assert session_id(page) == sid
    expect(say(page, "CD-100002")).to_contain_text("email address or phone number")  # answered in context


def test_history_keeps_button_titles_and_buttons(new_page, live_stack):
    page = open_chat(new_page, live_stack)
    say(page, "hi")
    expect(page.get_by_role("button", name="Track my order")).to_be_visible()
    page.reload()  # the last bot message's quick replies come back with the transcript
    page.get_by_role("button", name="Track my order").click()
    expect(page.locator(BOT).last).to_contain_text("order number", timeout=60_000)
    page.reload()
    expect(page.locator(SHOPPER).last).to_have_text(re.compile("Track my order$"))  # title, not "/request…"


def test_markup_in_messages_is_shown_as_text(new_page, live_stack):
    page = open_chat(new_page, live_stack)
    attack = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    page.fill("#input", attack)
    page.press("#input", "Enter")
    expect(page.locator(SHOPPER).last).to_contain_text(attack)
    expect(page.locator(BOT).last).to_be_visible(timeout=60_000)
    page.reload()  # and again when it comes back from the stored transcript
    expect(page.locator(SHOPPER).last).to_contain_text(attack)
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator(".messages img, .messages script").count() == 0


def test_phone_viewport(new_page, live_stack, tmp_path):
    page = open_chat(new_page, live_stack, viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True)
    for selector in ("#input", "#send"):
        expect(page.locator(selector)).to_be_in_viewport(ratio=1)
    say(page, "hi")
    expect(page.locator("#send")).to_be_in_viewport(ratio=1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    assert page.evaluate("document.documentElement.scrollHeight") <= 640  # only the log scrolls
    page.screenshot(path=str(tmp_path / "web-chat-phone.png"))


def test_keyboard_only(new_page, live_stack):
    page = open_chat(new_page, live_stack)
    page.keyboard.press("Tab")  # conversation log (scrollable region) first, then the input, then Send
    page.keyboard.press("Tab")
    expect(page.locator("#input")).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # visible focus
    page.keyboard.type("where is my order")
    page.keyboard.press("Enter")
    expect(page.locator(SHOPPER).last).to_contain_text("where is my order")
    expect(page.locator(BOT).last).to_contain_text("order number", timeout=60_000)
    expect(page.locator("#input")).to_have_value("")
    page.keyboard.press("Tab")
    expect(page.locator("#send")).to_be_focused()


def test_locale_sets_language_direction_and_metadata(new_page, live_stack, tmp_path):
    page = open_chat(new_page, live_stack, locale="ar-EG")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("lang", "ar")  # the interface language the server chose
    expect(page.locator("[role=log][aria-live=polite]")).to_have_count(1)
    say(page, "hi")
    resp = staff_api(live_stack).get(f"/api/conversations/web:{session_id(page)}/messages")
    inbound = [m for m in resp.json() if m["author"] == "shopper"]
    assert inbound[0]["payload"]["metadata"]["locale"] == "ar-EG"
    page.screenshot(path=str(tmp_path / "web-chat-rtl.png"))


@pytest.fixture
def shop_site():
    """A shop page on another origin (localhost vs the app's 127.0.0.1) that embeds the widget."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = pages.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield pages, f"http://localhost:{server.server_port}"
    finally:
        server.shutdown()


def test_embed_script_on_another_origin(new_page, live_stack, shop_site, tmp_path):
    pages, shop_url = shop_site
    pages["/"] = (f'<!doctype html><html lang="en"><head><title>Shop</title>'
                  f'<style>button{{background:red!important}}</style></head><body><h1>My shop</h1>'
                  f'<script src="{live_stack.app_url}/widget.js" data-crossdesk async></script></body></html>').encode()
    page = new_page()
    page.goto(shop_url + "/")
    launcher = page.get_by_role("button", name="Chat with us")
    expect(launcher).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    assert page.evaluate("getComputedStyle(document.querySelector('[data-crossdesk-widget]').shadowRoot"
                         ".querySelector('button')).backgroundColor") != "rgb(255, 0, 0)"  # shop CSS kept out
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    frame = page.frame_locator("iframe[title='Customer support chat']")
    expect(frame.locator("#chat-status")).to_have_text("")  # connected
    frame.locator("#input").fill("where is my order")
    frame.locator("#input").press("Enter")
    expect(frame.locator(BOT).last).to_contain_text("order number", timeout=60_000)
    page.screenshot(path=str(tmp_path / "web-widget-embedded.png"))
    frame.get_by_role("button", name="Close chat").click()
    expect(page.locator("iframe[title='Customer support chat']")).to_be_hidden()
    expect(launcher).to_be_focused()


def test_reconnects_after_a_dropped_connection(new_page, live_stack):
    page = new_page()
    sockets = []

    def through(ws):  # pass every frame on to the real app, but keep a handle to drop the connection
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/chat"), through)
    page.goto(f"{live_stack.app_url}/chat")
    expect(page.locator("#chat-status")).to_have_text("")
    expect(say(page, "where is my order")).to_contain_text("order number")
    sockets[-1].close(code=1011, reason="test drop")
    expect(page.locator("#chat-status")).to_have_text("Reconnecting…")
    expect(page.locator("#chat-status")).to_have_text("", timeout=15_000)
    assert len(sockets) == 2
    expect(page.locator(SHOPPER)).to_have_count(1)  # transcript re-synced, not duplicated
    expect(say(page, "CD-100002")).to_contain_text("email address or phone number")
