// Staff sign-in: JSON to /api/auth/login; the session lives in an HttpOnly cookie this script never sees.
// The CSRF token comes back in the JSON and is sent as X-CSRF-Token on state-changing requests.
"use strict";
(function () {
  const form = document.getElementById("login");
  const me = document.getElementById("me");
  const status = document.getElementById("status");
  let csrf = null;

  function show(user) {
    form.hidden = !!user;
    me.hidden = !user;
    if (user) {
      document.getElementById("me-name").textContent = user.name + " <" + user.email + ">";
      document.getElementById("me-role").textContent = user.role;
    }
  }

  async function refresh() {
    const resp = await fetch("/api/auth/me", { credentials: "same-origin" });
    if (resp.ok) {
      const data = await resp.json();
      csrf = data.csrf_token;
      show(data.user);
    } else {
      show(null);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "";
    const resp = await fetch("/api/auth/login", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: form.email.value, password: form.password.value }),
    });
    const data = await resp.json().catch(() => ({}));
    if (resp.ok) {
      csrf = data.csrf_token;
      form.password.value = "";
      show(data.user);
    } else {
      status.textContent = resp.status === 429 ? "Too many attempts — please wait and try again."
        : (typeof data.detail === "string" ? data.detail : "Sign-in failed.");
    }
  });

  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/api/auth/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf || "" } });
    csrf = null;
    show(null);
  });

  refresh();
})();
