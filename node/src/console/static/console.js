// The console's only script (Content-Security-Policy: script-src 'self'): while a clerk fills
// in a new request, what is still missing is asked of the node (the same validation as when it
// is sent) and shown above the form. The page works without it: the form is checked on sending.
"use strict";
(function () {
  var form = document.getElementById("new-request");
  var out = document.getElementById("problems");
  if (!form || !out) {
    return;
  }
  var timer = null;
  var asked = 0;
  function check() {
    var n = ++asked;
    fetch("/new/check", {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
    })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && n === asked) {
          out.innerHTML = html;
        }
      })
      .catch(function () {});
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });
  form.addEventListener("change", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 100);
  });
  check();
})();
