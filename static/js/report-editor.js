// The report editor (reporting/templates/reporting/editor.html). Data comes from the page's JSON script tags
// (report-editor-config, report-macros); every change goes through the REST API with the report version the
// page holds, so a save from a stale page is refused (409) instead of overwriting a colleague's text.
//
// - autosave a few seconds after typing stops; Ctrl+S saves at once; on a conflict autosave stops and the page
//   says "saved elsewhere — reload";
// - Ctrl+Shift+P releases the report as preliminary; Ctrl+Enter opens the sign dialog (password again);
// - macros: the picker inserts at the cursor; ".name" then Tab expands a macro by name;
// - presence: /ws/reports/<id>/presence/ says who else has the report open.
(function () {
  "use strict";

  var AUTOSAVE_AFTER_MS = 2500;
  var configElement = document.getElementById("report-editor-config");
  if (!configElement) { return; }
  var config = JSON.parse(configElement.textContent);
  var form = document.getElementById("report-editor");
  var presenceLine = document.getElementById("presence");

  connectPresence();
  if (!config.editable || !form) { return; }

  var macrosElement = document.getElementById("report-macros");
  var macros = macrosElement ? JSON.parse(macrosElement.textContent) : [];
  var saveState = document.getElementById("save-state");
  var csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var version = config.version;
  var dirty = false;
  var stopped = false;
  var saving = null;
  var timer = null;
  var lastTextArea = form.querySelector("textarea[data-section]");

  function show(message, kind) {
    saveState.textContent = message;
    saveState.className = "save-state" + (kind ? " " + kind : "");
  }

  function collect() {
    var sections = {};
    var fields = {};
    form.querySelectorAll("[data-section]").forEach(function (element) {
      sections[element.getAttribute("data-section")] = element.value;
    });
    form.querySelectorAll("[data-field]").forEach(function (element) {
      fields[element.getAttribute("data-field")] = element.value;
    });
    return { sections: sections, fields: fields };
  }

  function request(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    });
  }

  function describe(data) {
    if (data && typeof data.detail === "string") { return data.detail; }
    try { return JSON.stringify(data); } catch (error) { return "the server refused the request"; }
  }

  function stop(message) {
    stopped = true;
    clearTimeout(timer);
    show(message, "conflict");
    form.classList.add("stale");
  }

  // Saves what is on the page; resolves true when the server has it.
  function save() {
    if (stopped) { return Promise.resolve(false); }
    if (saving) { return saving.then(function () { return dirty ? save() : !stopped; }); }
    if (!dirty) { return Promise.resolve(true); }
    clearTimeout(timer);
    dirty = false;
    var body = collect();
    body.version = version;
    show("Saving…");
    saving = request("PATCH", config.apiUrl, body).then(function (result) {
      saving = null;
      if (result.status === 200) {
        version = result.data.version;
        show("Saved · version " + version, "saved");
        return true;
      }
      if (result.status === 409) {
        stop("Saved elsewhere — reload the page to see the current report. " + describe(result.data));
        return false;
      }
      dirty = true;
      show("Not saved: " + describe(result.data), "error");
      return false;
    }, function () {
      saving = null;
      dirty = true;
      show("Not saved: the server cannot be reached; retrying when you type again.", "error");
      return false;
    });
    return saving;
  }

  function changed() {
    if (stopped) { return; }
    dirty = true;
    show("Unsaved changes");
    clearTimeout(timer);
    timer = setTimeout(save, AUTOSAVE_AFTER_MS);
  }

  function preliminary() {
    if (stopped || config.status !== "draft") { return; }
    save().then(function (ok) {
      if (!ok) { return; }
      show("Releasing as preliminary…");
      request("POST", config.apiUrl + "preliminary/", { version: version }).then(function (result) {
        if (result.status === 200) {
          window.location.reload();
        } else {
          show("Not preliminary: " + describe(result.data), "error");
        }
      });
    });
  }

  // Signing: the dialog asks for the password again (step-up).
  var dialog = document.getElementById("sign-dialog");
  var signForm = document.getElementById("sign-form");
  var signPassword = document.getElementById("sign-password");
  var signError = document.getElementById("sign-error");

  function openSignDialog() {
    if (stopped) { return; }
    signError.hidden = true;
    signPassword.value = "";
    dialog.showModal();
    signPassword.focus();
  }

  signForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var password = signPassword.value;
    save().then(function (ok) {
      if (!ok) {
        signError.textContent = "The report could not be saved first; it was not signed.";
        signError.hidden = false;
        return;
      }
      request("POST", config.apiUrl + "sign/", { version: version, password: password }).then(function (result) {
        if (result.status === 200) {
          dialog.close();
          window.location.reload();
          return;
        }
        signError.textContent = describe(result.data);
        signError.hidden = false;
        if (result.status === 409) { stop("Not signed: " + describe(result.data)); }
      });
    });
  });
  document.getElementById("sign-cancel").addEventListener("click", function () { dialog.close(); });

  // Macros.
  function findMacro(name) {
    var wanted = name.toLowerCase();
    for (var i = 0; i < macros.length; i += 1) {
      if (macros[i].name.toLowerCase() === wanted) { return macros[i]; }
    }
    return null;
  }

  function insertAt(textArea, start, end, text) {
    textArea.focus();
    textArea.setRangeText(text, start, end, "end");
    changed();
  }

  document.getElementById("macro-select").addEventListener("change", function (event) {
    var macro = findMacro(event.target.value);
    event.target.value = "";
    if (macro && lastTextArea) {
      insertAt(lastTextArea, lastTextArea.selectionStart, lastTextArea.selectionEnd, macro.text);
    }
  });

  form.querySelectorAll("textarea[data-section]").forEach(function (textArea) {
    textArea.addEventListener("focus", function () { lastTextArea = textArea; });
    textArea.addEventListener("keydown", function (event) {
      if (event.key !== "Tab" || event.shiftKey || textArea.selectionStart !== textArea.selectionEnd) { return; }
      var before = textArea.value.slice(0, textArea.selectionStart);
      var match = /(^|\s)\.([\w-]+)$/.exec(before);
      var macro = match && findMacro(match[2]);
      if (!macro) { return; }
      event.preventDefault();
      insertAt(textArea, textArea.selectionStart - match[2].length - 1, textArea.selectionStart, macro.text);
    });
  });

  form.addEventListener("input", changed);
  form.addEventListener("change", function (event) {
    if (event.target.matches("[data-field]")) { changed(); }
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); save(); });

  form.querySelectorAll("[data-command]").forEach(function (button) {
    button.addEventListener("click", function () {
      var command = button.getAttribute("data-command");
      if (command === "save") { dirty = true; save(); }
      if (command === "preliminary") { preliminary(); }
      if (command === "sign") { openSignDialog(); }
    });
  });

  document.addEventListener("keydown", function (event) {
    if (!(event.ctrlKey || event.metaKey)) { return; }
    if (event.key === "s" || event.key === "S") {
      if (event.shiftKey) { return; }
      event.preventDefault();
      dirty = true;
      save();
    } else if (event.shiftKey && (event.key === "P" || event.key === "p")) {
      event.preventDefault();
      preliminary();
    } else if (event.key === "Enter") {
      event.preventDefault();
      openSignDialog();
    }
  });

  window.addEventListener("beforeunload", function (event) {
    if (dirty && !stopped) { event.preventDefault(); event.returnValue = ""; }
  });

  // Presence: who else has this report open.
  function connectPresence() {
    if (!presenceLine || !window.WebSocket) { return; }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var delay = 1000;
    function open() {
      var socket = new WebSocket(scheme + window.location.host + config.presencePath);
      socket.addEventListener("open", function () { delay = 1000; });
      socket.addEventListener("message", function (event) {
        var message = JSON.parse(event.data);
        if (message.kind !== "presence") { return; }
        var others = [];
        var elsewhere = false;
        message.editors.forEach(function (editor) {
          if (editor.you) { elsewhere = true; } else if (others.indexOf(editor.name) < 0) { others.push(editor.name); }
        });
        var parts = [];
        if (others.length > 0) { parts.push(others.join(", ") + (others.length === 1 ? " is editing" : " are editing")); }
        if (elsewhere) { parts.push("You have it open in another window"); }
        presenceLine.textContent = parts.join(". ");
        presenceLine.classList.toggle("others", parts.length > 0);
      });
      socket.addEventListener("close", function (event) {
        // 4401 / 4403: not signed in, or not allowed; reconnecting would not change that.
        if (event.code === 4401 || event.code === 4403) { return; }
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 30000);
      });
    }
    open();
  }
})();
