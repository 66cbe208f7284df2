// The review item page's keys: 1-9 pick an option of the current field, arrows move between
// fields, Ctrl+Enter completes (saves and opens the next item), S skips, ? shows the keys.
// The page works without it: the form posts as it is, and the server checks the label.
(function () {
  "use strict";
  var form = document.getElementById("label-form");
  var help = document.getElementById("keys-help");
  var fields = form ? Array.prototype.slice.call(form.querySelectorAll(".rubric-field")) : [];
  var ENTRY = "input:not([type=hidden]), textarea";  // what a reviewer answers in

  function typing(el) {
    return el && (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && el.type !== "radio" && el.type !== "checkbox"));
  }
  function current() {
    var el = document.activeElement;
    for (var i = 0; i < fields.length; i++) if (fields[i].contains(el)) return i;
    return -1;
  }
  function mark(i) {
    fields.forEach(function (f, j) { f.classList.toggle("current", j === i); });
  }
  function focusField(i) {
    if (i < 0 || i >= fields.length) return;
    var f = fields[i];
    var el = f.querySelector("input:checked") || f.querySelector(ENTRY);
    (el || f).focus();
    mark(i);
    f.scrollIntoView({ block: "nearest" });
  }
  function pick(n) {
    var i = current();
    if (i < 0) i = 0;
    var options = fields[i] ? fields[i].querySelectorAll("input[type=radio]") : [];
    if (n > options.length) return false;
    options[n - 1].checked = true;
    options[n - 1].focus();
    mark(i);
    showError(fields[i], "");
    return true;
  }
  function showError(f, text) {
    var p = f.querySelector(".field-error");
    if (p) p.textContent = text;
    f.classList.toggle("invalid", !!text);
    f.querySelectorAll(ENTRY).forEach(function (el) {
      if (text) el.setAttribute("aria-invalid", "true"); else el.removeAttribute("aria-invalid");
    });
  }
  // The rubric's rules, checked here so a reviewer hears at once what is missing; the API checks again.
  function validate() {
    var first = -1;
    fields.forEach(function (f, i) {
      var text = "";
      var radios = f.querySelectorAll("input[type=radio]");
      var box = f.querySelector("input:not([type=radio]):not([type=hidden]), textarea");
      if (radios.length) {
        if (f.dataset.required && !f.querySelector("input:checked")) text = "Pick one (keys 1-" + Math.min(radios.length, 9) + ").";
      } else if (box && !box.checkValidity()) {
        text = box.validity.valueMissing ? "Required." : box.validationMessage;
      }
      showError(f, text);
      if (text && first < 0) first = i;
    });
    if (first >= 0) focusField(first);
    return first < 0;
  }

  if (form) {
    form.noValidate = true;  // validate() speaks instead of the browser's bubbles
    form.addEventListener("submit", function (e) {
      var b = e.submitter;
      if (b && b.hasAttribute("formnovalidate")) return;
      if (!validate()) e.preventDefault();
    });
    form.addEventListener("focusin", function () { mark(current()); });
    form.addEventListener("change", function (e) {
      var f = e.target.closest(".rubric-field");
      if (f) showError(f, "");
    });
    if (!document.querySelector("[autofocus]:not(dialog *)")) focusField(0);
  }

  document.addEventListener("keydown", function (e) {
    var el = document.activeElement;
    if (help && help.open) return;  // the dialog keeps its own keys (Esc closes it)
    if (form && e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit(document.getElementById("complete"));
      return;
    }
    // Plain Enter in a number or an option goes on to the next field instead of sending the
    // form: only Ctrl+Enter completes.
    if (form && e.key === "Enter" && !e.altKey && !e.shiftKey && el && el.tagName === "INPUT" && form.contains(el)) {
      e.preventDefault();
      focusField(current() + 1);
      return;
    }
    if (e.key === "Escape" && typing(el)) {
      var i = current();
      if (i >= 0) { fields[i].focus(); mark(i); }
      return;
    }
    var moving = (e.key === "ArrowDown" || e.key === "ArrowUp") && (e.altKey || !(el && el.tagName === "TEXTAREA"));
    if (form && moving) {
      e.preventDefault();
      var at = current();
      focusField(at < 0 ? 0 : at + (e.key === "ArrowDown" ? 1 : -1));
      return;
    }
    if (typing(el) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "?") {
      e.preventDefault();
      if (help) help.showModal();
    } else if (form && /^[1-9]$/.test(e.key)) {
      if (pick(Number(e.key))) e.preventDefault();
    } else if (form && (e.key === "s" || e.key === "S") && document.getElementById("skip")) {
      e.preventDefault();
      form.requestSubmit(document.getElementById("skip"));
    }
  });

  var button = document.getElementById("keys-button");
  if (button && help) button.addEventListener("click", function () { help.showModal(); });

  // The span shown beside the waterfall follows the address's #span-<id>.
  function follow() {
    var id = location.hash.indexOf("#span-") === 0 ? location.hash : "";
    document.querySelectorAll(".wf-row").forEach(function (row) {
      var a = row.querySelector("a");
      var on = id ? a.getAttribute("href") === id : row.classList.contains("selected-default");
      row.classList.toggle("selected", on);
      if (on) a.setAttribute("aria-current", "true"); else a.removeAttribute("aria-current");
    });
  }
  document.querySelectorAll(".wf-row.selected").forEach(function (row) { row.classList.add("selected-default"); });
  window.addEventListener("hashchange", follow);
  follow();
})();
