// The staff pages' only script: live countdowns, and the routing
// suggestion and repeat-caller check while an agent types. Every page
// works without it.
(function () {
  "use strict";
  function span(ms) {
    var m = Math.floor(Math.abs(ms) / 60000), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60), mi = m % 60;
    if (d === 0 && h === 0) return mi + "分钟";
    if (d === 0) return h + "小时" + mi + "分";
    return d + "天" + h + "小时";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due-ms]").forEach(function (el) {
      var left = Number(el.getAttribute("data-due-ms")) - now, which = el.getAttribute("data-which") || "";
      el.textContent = which + (left >= 0 ? "剩余 " : "已超期 ") + span(left);
      el.classList.toggle("late", left < 0);
    });
  }
  tick();
  setInterval(tick, 30000);

  var form = document.getElementById("intake-form");
  if (!form) return;
  var box = document.getElementById("suggest-box"), repeats = document.getElementById("repeat-box"), timer = null;
  function text(tag, s, cls) { var e = document.createElement(tag); e.textContent = s; if (cls) e.className = cls; return e; }
  function ask() {
    var body = new URLSearchParams(new FormData(form));
    fetch("/agent/suggest", { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        if (!j) return;
        box.replaceChildren();
        if (!j.suggestions.length) box.appendChild(text("span", "暂无建议"));
        j.suggestions.forEach(function (s) {
          var p = text("div", (s.name || s.department) + " " + s.percent, "suggestion");
          p.appendChild(text("div", s.reason, "muted"));
          box.appendChild(p);
        });
        repeats.replaceChildren();
        if (!j.repeats.length) repeats.appendChild(text("span", "无"));
        j.repeats.forEach(function (t) {
          var a = text("a", t.ticket_no + " " + t.title + "（" + t.state + "，" + t.created_at + "）", "repeat");
          a.href = "/tickets/" + t.id;
          var d = document.createElement("div"); d.appendChild(a); repeats.appendChild(d);
        });
      })
      .catch(function () {});
  }
  form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(ask, 500); });
})();
