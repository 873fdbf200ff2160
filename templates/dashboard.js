// 领导驾驶舱: when the event stream reports a ticket change, fetch the
// figures fragment again (at most every 3 s) and swap it in. The page is
// complete without this script; a reload does the same.
(function () {
  "use strict";
  var box = document.getElementById("dashboard-live");
  if (!box || !window.EventSource || !window.fetch) return;
  var src = box.getAttribute("data-src");
  var pending = false, last = 0, reloads = 0;
  function mode(text) {
    var m = document.getElementById("live-mode");
    if (m) m.textContent = text;
  }
  function reload() {
    pending = false;
    last = Date.now();
    fetch(src, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (r.redirected) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        box.innerHTML = html;
        reloads += 1;
        box.setAttribute("data-reloads", String(reloads));
        mode(" · 实时更新中");
      })
      .catch(function () {});
  }
  var es = new EventSource("/dashboard/events");
  es.onopen = function () { mode(" · 实时更新中"); };
  es.onerror = function () { mode(" · 实时连接中断，正在重连…"); };
  es.addEventListener("ticket", function () {
    if (pending) return;
    pending = true;
    setTimeout(reload, Math.max(0, 3000 - (Date.now() - last)));
  });
})();
