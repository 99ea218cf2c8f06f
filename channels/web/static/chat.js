// crossdesk web chat. Plain JS, no dependencies. Message content is only ever put into the page with
// textContent / text nodes (never innerHTML), so nothing a shopper or the bot writes can become markup.
(function () {
  "use strict";

  var SESSION_KEY = "crossdesk.session";
  var SESSION_RE = /^[A-Za-z0-9_-]{16,64}$/;
  var RTL = ["ar", "he", "iw", "fa", "ur"];
  var LINK_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
  // Interface strings come with the page, in the language the server chose (?locale=, else Accept-Language).
  var UI = {};
  try { UI = JSON.parse(document.body.getAttribute("data-ui") || "{}"); } catch (e) { UI = {}; }
  function ui(key, fallback) { return typeof UI[key] === "string" ? UI[key] : fallback; }
  var AUTHOR_LABEL = { shopper: ui("you", "You"), bot: ui("assistant", "Assistant"), agent: ui("agent", "Support agent"),
                       system: ui("system", "Support") };

  var requested = new URLSearchParams(location.search).get("locale");
  var locale = (requested && /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$/.test(requested)) ? requested
    : (navigator.language || "en");
  var root = document.documentElement;
  root.dir = RTL.indexOf(locale.split("-")[0].toLowerCase()) >= 0 ? "rtl" : "ltr";

  var list = document.getElementById("messages");
  var typing = document.getElementById("typing");
  var form = document.getElementById("composer");
  var input = document.getElementById("input");
  var statusEl = document.getElementById("chat-status");
  var closeBtn = document.getElementById("chat-close");

  var session = loadSession();
  var ws = null, connectedOnce = false, attempts = 0, reconnectTimer = null, typingTimer = null;
  var outbox = [];          // frames typed while disconnected, sent on (re)connect
  var pending = {};         // client_id -> message element, until the server acks it

  // ---- session id: 128 random bits, base64url, kept in this origin's localStorage ----
  function randomId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function uuid() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function loadSession(fresh) {
    var id = null;
    try { id = fresh ? null : localStorage.getItem(SESSION_KEY); } catch (e) { /* storage blocked */ }
    if (!id || !SESSION_RE.test(id)) {
      id = randomId();
      try { localStorage.setItem(SESSION_KEY, id); } catch (e) { /* lives for this page only */ }
    }
    return id;
  }

  // ---- rendering ----
  function appendText(el, text) {
    var last = 0, m;
    LINK_RE.lastIndex = 0;
    while ((m = LINK_RE.exec(text)) !== null) {
      var url = m[0].replace(/[.,;:!?)\]]+$/, "");
      var href = null;
      try { var u = new URL(url); if (u.protocol === "http:" || u.protocol === "https:") href = u.href; } catch (e) { }
      if (!href) continue;
      el.appendChild(document.createTextNode(text.slice(last, m.index)));
      var a = document.createElement("a");
      a.href = href;
      a.textContent = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      el.appendChild(a);
      last = m.index + url.length;
    }
    el.appendChild(document.createTextNode(text.slice(last)));
  }

  function formatTime(date) {
    var sameDay = date.toDateString() === new Date().toDateString();
    var opts = sameDay ? { hour: "2-digit", minute: "2-digit" }
                       : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
    try { return date.toLocaleString(locale, opts); } catch (e) { return date.toLocaleString(undefined, opts); }
  }

  function addMessage(author, text, ts) {
    var item = document.createElement("div");
    item.className = "msg " + (AUTHOR_LABEL[author] ? author : "bot");
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.dir = "auto";  // each message follows its own script (English reply in an Arabic UI, and back)
    var who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = (AUTHOR_LABEL[author] || AUTHOR_LABEL.bot) + ": ";
    item.appendChild(who);  // outside the bubble, so it doesn't decide the bubble's dir="auto"
    appendText(bubble, text || "");
    var date = ts ? new Date(ts) : new Date();
    var time = document.createElement("time");
    time.dateTime = date.toISOString();
    time.title = date.toLocaleString(locale);
    time.textContent = formatTime(date);
    item.appendChild(bubble);
    item.appendChild(time);
    list.appendChild(item);
    scrollDown();
    return item;
  }

  function addButtons(item, buttons) {
    if (!buttons || !buttons.length) return;
    var group = document.createElement("div");
    group.className = "quick-replies";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", ui("suggested", "Suggested replies"));
    buttons.forEach(function (b) {
      var btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = b.title;
      btn.addEventListener("click", function () {
        addMessage("shopper", b.title);
        send({ type: "button", payload: b.payload, title: b.title, client_id: uuid() });
        input.focus();
      });
      group.appendChild(btn);
    });
    item.appendChild(group);
    scrollDown();
  }

  function clearButtons() {
    var groups = list.querySelectorAll(".quick-replies");
    for (var i = 0; i < groups.length; i++) groups[i].remove();
  }

  function notice(text) {
    var el = document.createElement("p");
    el.className = "notice";
    el.textContent = text;
    list.appendChild(el);
    scrollDown();
  }

  function scrollDown() { list.scrollTop = list.scrollHeight; }

  function setTyping(on) {
    clearTimeout(typingTimer);
    typing.hidden = !on;
    if (on) { scrollDown(); typingTimer = setTimeout(function () { typing.hidden = true; }, 30000); }
  }

  function setStatus(text) { statusEl.textContent = text; }

  // ---- connection ----
  function send(frame) {
    clearButtons();
    if (frame.client_id) pending[frame.client_id] = list.lastElementChild;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
    else { outbox.push(frame); connect(); }
  }

  function onFrame(event) {
    var f;
    try { f = JSON.parse(event.data); } catch (e) { return; }
    if (f.type === "typing") setTyping(true);
    else if (f.type === "ack") delete pending[f.client_id];
    else if (f.type === "message") {
      setTyping(false);
      addButtons(addMessage(f.author || "bot", f.text, f.ts), f.buttons);
    } else if (f.type === "error") {
      setTyping(false);
      var el = f.client_id && pending[f.client_id];
      if (el) { el.classList.add("failed"); delete pending[f.client_id]; }
      notice(f.message);
    }
  }

  function connect() {
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) return;
    clearTimeout(reconnectTimer);
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(scheme + "//" + location.host + "/ws/chat?session=" + encodeURIComponent(session));
    ws.onopen = function () {
      // After a drop, replies may have been stored while we were away: show the transcript afresh.
      var resync = connectedOnce && !outbox.length;
      connectedOnce = true;
      attempts = 0;
      setStatus("");
      ws.send(JSON.stringify({ type: "hello", locale: locale }));
      while (outbox.length) ws.send(JSON.stringify(outbox.shift()));
      if (resync) { list.textContent = ""; loadHistory(); }
    };
    ws.onmessage = onFrame;
    ws.onclose = function (event) {
      setTyping(false);
      if (event.code === 1008) session = loadSession(true);  // the server refused the id: start afresh
      var delay = Math.min(30000, 500 * Math.pow(2, attempts++)) * (0.75 + Math.random() / 2);
      setStatus(ui("reconnecting", "Reconnecting…"));
      reconnectTimer = setTimeout(connect, delay);
    };
  }

  function loadHistory() {
    return fetch("/api/web/" + encodeURIComponent(session) + "/history", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
      .then(function (data) {
        var msgs = data.messages || [], last = null;
        msgs.forEach(function (m) { last = addMessage(m.author, m.text, m.ts); });
        var tail = msgs[msgs.length - 1];
        if (last && tail.author !== "shopper") addButtons(last, tail.buttons);
      })
      .catch(function () { /* no history is fine: start empty */ });
  }

  // ---- input ----
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    autosize();
    addMessage("shopper", text);
    send({ type: "message", text: text, client_id: uuid() });
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  function autosize() { input.style.height = "auto"; input.style.height = Math.min(input.scrollHeight, 128) + "px"; }
  input.addEventListener("input", autosize);
  window.addEventListener("online", connect);

  // Inside the shop's widget iframe: a close button that asks the launcher (postMessage) to hide us.
  if (new URLSearchParams(location.search).get("embed") === "1" && window.parent !== window) {
    closeBtn.hidden = false;
    var close = function () { window.parent.postMessage({ type: "crossdesk:close" }, "*"); };
    closeBtn.addEventListener("click", close);
    document.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });
  }

  loadHistory().then(connect);
})();
