// gewe-server console: drag and drop onto the upload form. Everything else is
// plain forms (and htmx polling for the login status).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form[data-drop]").forEach(function (form) {
    var input = form.querySelector("input[type=file]");
    form.addEventListener("dragover", function (e) {
      e.preventDefault();
      form.classList.add("over");
    });
    form.addEventListener("dragleave", function () {
      form.classList.remove("over");
    });
    form.addEventListener("drop", function (e) {
      e.preventDefault();
      form.classList.remove("over");
      if (e.dataTransfer && e.dataTransfer.files.length) {
        input.files = e.dataTransfer.files;
        form.requestSubmit();
      }
    });
  });
});
