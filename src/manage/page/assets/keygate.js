// The settings page's only script: the Copy button beside a key shown once. The page
// works without it (the key sits in a read-only field to select and copy by hand).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = button.parentElement.querySelector(".copied");
    if (!field) { return; }
    button.hidden = false;
    field.addEventListener("focus", function () { field.select(); });
    button.addEventListener("click", function () {
      field.select();
      var done = function () { if (status) { status.textContent = "Copied"; } };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          if (status) { status.textContent = "Press Ctrl+C (⌘C) to copy"; }
        });
      } else if (document.execCommand && document.execCommand("copy")) {
        done();
      } else if (status) {
        status.textContent = "Press Ctrl+C (⌘C) to copy";
      }
    });
  });
});
