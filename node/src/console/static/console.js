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

// Adding evidence: the file is sent as the request's body (the node hashes it, and seals it for
// sending, as it arrives), with the progress of the upload shown.
(function () {
  var form = document.getElementById("evidence-add");
  if (!form) {
    return;
  }
  var status = document.getElementById("evidence-status");
  var bar = document.getElementById("evidence-progress");
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var file = document.getElementById("evidence-file").files[0];
    if (!file) {
      return;
    }
    var q = new URLSearchParams({
      name: file.name,
      size: String(file.size),
      mode: document.getElementById("evidence-mode").value,
      description: document.getElementById("evidence-description").value,
      method: document.getElementById("evidence-method").value,
    });
    var x = new XMLHttpRequest();
    x.open("PUT", "/cases/" + encodeURIComponent(form.dataset.case) + "/evidence?" + q.toString());
    x.setRequestHeader("x-csrf-token", form.dataset.csrf);
    bar.hidden = false;
    bar.value = 0;
    x.upload.onprogress = function (p) {
      if (p.lengthComputable) {
        bar.value = Math.round((100 * p.loaded) / p.total);
      }
    };
    x.onload = function () {
      if (x.status === 200) {
        var r = JSON.parse(x.responseText);
        status.textContent = r.items.join(", ") + " · SHA-256 " + r.sha256;
        window.location.reload();
      } else {
        status.textContent = x.status + ": " + x.responseText.replace(/<[^>]*>/g, " ");
      }
    };
    x.onerror = function () {
      status.textContent = "the upload failed";
    };
    status.textContent = "…";
    x.send(file);
  });
})();

// Exporting a case's bundle for an auditor: the auditor's card is sent, and a link to the bundle
// is shown (it can be fetched once).
(function () {
  var form = document.getElementById("bundle-export");
  if (!form) {
    return;
  }
  var status = document.getElementById("bundle-status");
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var card = document.getElementById("auditor-card").files[0];
    status.textContent = "…";
    fetch("/cases/" + encodeURIComponent(form.dataset.case) + "/export", {
      method: "PUT",
      headers: { "x-csrf-token": form.dataset.csrf },
      body: card || new Blob([]),
      credentials: "same-origin",
    })
      .then(function (r) {
        return r.ok ? r.json() : r.text().then(function (t) { throw new Error(r.status + ": " + t.replace(/<[^>]*>/g, " ")); });
      })
      .then(function (r) {
        status.textContent = "";
        var a = document.createElement("a");
        a.id = "bundle-download";
        a.href = r.download;
        a.textContent = r.name + " (" + r.bytes + " B, SHA-256 " + r.sha256 + ", " + r.disclosed + " disclosed)";
        status.appendChild(a);
      })
      .catch(function (err) {
        status.textContent = String(err.message || err);
      });
  });
})();

// Verifying bundles: each file is uploaded, then the verifier's report is opened.
(function () {
  var form = document.getElementById("verify-form");
  if (!form) {
    return;
  }
  var status = document.getElementById("verify-status");
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var files = Array.prototype.slice.call(document.getElementById("bundles").files, 0, 2);
    status.textContent = "…";
    Promise.all(files.map(function (f) {
      return fetch("/verify/upload", {
        method: "PUT",
        headers: { "x-csrf-token": form.dataset.csrf },
        body: f,
        credentials: "same-origin",
      }).then(function (r) {
        return r.ok ? r.json() : r.text().then(function (t) { throw new Error(r.status + ": " + t.replace(/<[^>]*>/g, " ")); });
      });
    }))
      .then(function (ids) {
        window.location.assign("/verify/report?ids=" + ids.map(function (r) { return r.id; }).join(","));
      })
      .catch(function (err) {
        status.textContent = String(err.message || err);
      });
  });
})();

// A section whose content is moving (evidence being fetched) is shown again every few seconds.
(function () {
  var moving = document.querySelector("[data-refresh]");
  if (moving) {
    setTimeout(function () { window.location.reload(); }, 1000 * Number(moving.dataset.refresh || 3));
  }
})();

// A repeatable part of the request form (offences, victims, measures): "Add another" copies its
// last row, emptied, with the next number in its fields' names.
(function () {
  document.querySelectorAll("button[data-add]").forEach(function (button) {
    button.addEventListener("click", function () {
      var group = button.closest(".group");
      var rows = group.querySelectorAll("fieldset.row");
      var last = rows[rows.length - 1];
      var copy = last.cloneNode(true);
      var n = rows.length;
      copy.querySelectorAll("[name], [id], label[for]").forEach(function (e) {
        ["name", "id", "for"].forEach(function (a) {
          var v = e.getAttribute(a);
          if (v) {
            e.setAttribute(a, v.replace(/\.\d+$/, "." + n));
          }
        });
        if (e.tagName === "INPUT" || e.tagName === "TEXTAREA") {
          e.value = "";
        } else if (e.tagName === "SELECT") {
          e.selectedIndex = 0;
        }
      });
      var legend = copy.querySelector("legend");
      if (legend) {
        legend.textContent = legend.textContent.replace(/\d+$/, String(n + 1));
      }
      last.after(copy);
      var first = copy.querySelector("input, select, textarea");
      if (first) {
        first.focus();
      }
    });
  });
})();
