/* crossdesk chat widget. Embed with one line on any page of the shop:
 *   <script src="https://shop-support.example/widget.js" data-crossdesk async></script>
 * Adds a launcher button (inside a shadow root, so the page's CSS can't reach it) that opens the chat in an
 * iframe served by the crossdesk app itself. Optional: data-label="Chat with us", data-position="left". */
(function () {
  "use strict";
  if (window.__crossdeskWidget) return;
  window.__crossdeskWidget = true;

  var script = document.currentScript || document.querySelector("script[data-crossdesk]");
  if (!script || !script.src) return;
  var origin = new URL(script.src).origin;
  // Label and title in the shop page's language (data-locale, else <html lang>, else the browser's).
  var LABELS = /*LABELS*/{};
  var locale = script.getAttribute("data-locale") || document.documentElement.lang || navigator.language || "en";
  var strings = LABELS[locale.split("-")[0].toLowerCase()] || LABELS.en || { launcher: "Chat with us", title: "Customer support chat" };
  var label = script.getAttribute("data-label") || strings.launcher;
  var side = script.getAttribute("data-position") === "left" ? "left" : "right";

  function mount() {
    var host = document.createElement("div");
    host.setAttribute("data-crossdesk-widget", "");
    var shadow = host.attachShadow({ mode: "open" });
    var style = document.createElement("style");
    style.textContent =
      ":host{all:initial}" +
      ".launcher{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483000;font:600 15px/1 system-ui,sans-serif;" +
      "background:#1f5fbf;color:#fff;border:0;border-radius:24px;padding:14px 20px;cursor:pointer;" +
      "box-shadow:0 4px 14px rgba(0,0,0,.25)}" +
      ".launcher:focus-visible{outline:3px solid #f5a623;outline-offset:2px}" +
      ".panel{position:fixed;bottom:84px;" + side + ":20px;z-index:2147483000;width:380px;height:600px;" +
      "max-width:calc(100vw - 24px);max-height:calc(100vh - 104px);border:0;border-radius:14px;background:#fff;" +
      "box-shadow:0 8px 30px rgba(0,0,0,.3)}" +
      ".panel[hidden]{display:none}" +
      "@media (max-width:480px){.panel{left:0;right:0;bottom:0;top:0;width:100vw;height:100%;max-width:none;" +
      "max-height:none;border-radius:0}}";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "launcher";
    button.textContent = label;
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", "crossdesk-panel");
    var frame = null;

    function open() {
      if (!frame) {
        frame = document.createElement("iframe");
        frame.id = "crossdesk-panel";
        frame.className = "panel";
        frame.title = strings.title;
        frame.src = origin + "/chat?embed=1&locale=" + encodeURIComponent(locale);
        frame.setAttribute("allow", "clipboard-write");
        shadow.appendChild(frame);
      }
      frame.hidden = false;
      button.setAttribute("aria-expanded", "true");
      frame.focus();
    }
    function close() {
      if (frame) frame.hidden = true;
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }
    button.addEventListener("click", function () { frame && !frame.hidden ? close() : open(); });
    window.addEventListener("message", function (event) {
      if (event.origin === origin && frame && event.source === frame.contentWindow &&
          event.data && event.data.type === "crossdesk:close") close();
    });
    shadow.appendChild(style);
    shadow.appendChild(button);
    document.body.appendChild(host);
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
