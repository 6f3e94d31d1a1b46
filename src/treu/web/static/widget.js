/* Treu website widget (docs/web.md). Embed:
 *   <script src="https://treu.example/widget/v1.js" data-programme="tenant/programme"
 *           data-token="<member token from your backend, or nothing for guests>" async></script>
 * or call TreuWidget.mount(element, {programme, token, lang, api, signup}) yourself.
 * No cookies: the token goes in the Authorization header; everything renders in a shadow root. */
(function () {
  "use strict";
  var CSS =
    ":host{all:initial;display:block;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2430}" +
    ".box{box-sizing:border-box;max-width:100%;border:1px solid #d5d9e0;border-radius:12px;padding:14px 16px;background:#fff}" +
    "h2{font-size:1.05em;margin:0 0 6px}p{margin:4px 0}" +
    ".big{font-size:1.6em;font-weight:700}.muted{color:#4b5563;font-size:.9em}" +
    "progress{width:100%;height:10px;accent-color:#0f766e}" +
    "ul{list-style:none;padding:0;margin:6px 0}li{display:flex;flex-wrap:wrap;justify-content:space-between;gap:4px 12px;padding:4px 0;border-top:1px solid #eef0f3}" +
    "a{color:#0f5d56;text-underline-offset:2px}a:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}" +
    ".button{display:inline-block;margin:8px 0 4px;padding:8px 14px;border-radius:8px;background:#0f766e;color:#fff;text-decoration:none;font-weight:600}" +
    ".button:hover{background:#115e59}";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text; // never innerHTML: names come from elsewhere
    return node;
  }

  function style(root) {
    try {
      var sheet = new CSSStyleSheet(); // not blocked by the shop's style-src CSP
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      root.appendChild(el("style", {}, CSS));
    }
  }

  function member(box, m, id) {
    box.appendChild(el("h2", { id: id }, m.balance_label));
    box.appendChild(el("p", { class: "big", "data-treu": "balance" }, m.balance));
    if (m.pending) box.appendChild(el("p", { class: "muted" }, m.pending));
    if (m.next) {
      box.appendChild(el("label", { for: id + "-next" }, m.next.text));
      box.appendChild(el("progress", { id: id + "-next", max: m.next.max, value: m.next.value }));
    }
    if (m.rewards.length) {
      box.appendChild(el("p", {}, m.rewards_title));
      var list = el("ul", { "data-treu": "rewards" });
      m.rewards.forEach(function (r) {
        var item = el("li");
        item.appendChild(el("a", { href: r.url, target: "_blank", rel: "noopener" }, r.name));
        item.appendChild(el("span", { class: "muted" }, r.cost));
        list.appendChild(item);
      });
      box.appendChild(list);
    }
    box.appendChild(el("a", { href: m.portal.url, target: "_blank", rel: "noopener" }, m.portal.text));
  }

  function guest(box, g, id, signup) {
    box.appendChild(el("h2", { id: id }, g.title));
    box.appendChild(el("p", {}, g.text));
    var join = el("a", { class: "button", href: signup || g.url, "data-treu": "signup" }, g.action);
    box.appendChild(join);
    box.appendChild(el("p", { class: "muted" })).appendChild(el("a", { href: g.login_url }, g.login));
  }

  var count = 0;

  function mount(host, options) {
    var root = host.shadowRoot || host.attachShadow({ mode: "open" });
    root.textContent = "";
    style(root);
    var id = "treu-widget-" + ++count;
    var box = el("section", { class: "box", "aria-labelledby": id, "aria-live": "polite", "aria-busy": "true" });
    root.appendChild(box);
    var lang = options.lang || document.documentElement.lang || navigator.language || "";
    var url = options.api + "/widget/v1/" + options.programme + "?lang=" + encodeURIComponent(lang);
    var headers = options.token ? { Authorization: "Bearer " + options.token } : {};
    return fetch(url, { headers: headers, credentials: "omit", mode: "cors", cache: "no-store" })
      .then(function (response) {
        return response.json();
      })
      .then(function (data) {
        host.setAttribute("lang", data.lang);
        if (data.member) member(box, data.member, id);
        else guest(box, data.guest, id, options.signup);
        box.setAttribute("aria-busy", "false");
        host.setAttribute("data-treu-state", data.member ? "member" : "guest");
      })
      .catch(function () {
        box.setAttribute("aria-busy", "false");
        host.setAttribute("data-treu-state", "error");
      });
  }

  var script = document.currentScript;
  window.TreuWidget = { mount: mount };
  if (!script || !script.dataset.programme) return;
  var data = script.dataset;
  var host = (data.target && document.querySelector(data.target)) || el("div", { class: "treu-widget" });
  if (!host.parentNode) script.parentNode.insertBefore(host, script.nextSibling);
  mount(host, {
    api: new URL(script.src).origin,
    programme: data.programme,
    token: data.token,
    lang: data.lang,
    signup: data.signupUrl,
  });
})();
