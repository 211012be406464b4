// Dictation in the report editor: record → upload → the transcript arrives over the WebSocket → inserted at
// the cursor. Included by reporting/templates/reporting/_dictation.html, which also attaches it to the page.
//
//   RadiologyDictation.attach({
//     reportId: 42,                          // the report dictated into (required)
//     form: document.getElementById("report-editor"),   // holds the [data-section] textareas and [data-field]s
//     button: element, status: element,      // the record button and a line for what is happening (optional)
//     csrfToken: "…",                        // default: the form's csrfmiddlewaretoken, else the csrftoken cookie
//     apiUrl: "/api/dictations/", socketPath: "/ws/dictations/",
//     onCommand: function (segment) { return true if handled; }   // optional, see below
//   }) → { start(), stop(), toggle(), recording(), sendTranscript(text), ready }
//
// What the server says (reporting/dictation/events.py) is applied in order at the cursor of the field that had
// the focus when dictation began: text is inserted (and an "input" event fired, so the editor autosaves it as
// typing); "next field"/"previous field" move the focus; "insert macro <name>" inserts the macro's text; "sign
// report" only clicks the editor's Sign button, whose dialog asks for the password: a voice never signs.
// Only the dictations this page sent are applied (the same report open in another tab applies its own); a result
// is fetched from the API should the WebSocket be down. Each applied result is also dispatched on the form as a
// "dictation:result" CustomEvent.
//
// Audio: Web Audio records the microphone, the browser's own resampler (OfflineAudioContext) brings it to 16 kHz
// mono, and it is uploaded as 16-bit PCM WAV. Where the site uses the browser backend
// (RADIOLOGY_SPEECH_BACKEND=browser) the browser's speech recognition (webkitSpeechRecognition) listens instead
// and the text it hears is posted; it comes back over the same WebSocket, commands parsed the same way.
(function () {
  "use strict";

  var TARGET_RATE = 16000;

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  // 16-bit PCM mono WAV of Float32 samples at `rate`.
  function encodeWav(samples, rate) {
    var buffer = new ArrayBuffer(44 + samples.length * 2);
    var view = new DataView(buffer);
    function text(offset, value) {
      for (var i = 0; i < value.length; i++) { view.setUint8(offset + i, value.charCodeAt(i)); }
    }
    text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
    text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
    view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
    view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, samples.length * 2, true);
    for (var i = 0; i < samples.length; i++) {
      var s = Math.max(-1, Math.min(1, samples[i]));
      view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([buffer], { type: "audio/wav" });
  }

  function joinChunks(chunks) {
    var length = chunks.reduce(function (sum, chunk) { return sum + chunk.length; }, 0);
    var out = new Float32Array(length);
    var offset = 0;
    chunks.forEach(function (chunk) { out.set(chunk, offset); offset += chunk.length; });
    return out;
  }

  // The samples at 16 kHz, through the browser's resampler (which filters before it decimates).
  function resample(samples, rate) {
    if (rate === TARGET_RATE || samples.length === 0) { return Promise.resolve(samples); }
    var frames = Math.max(1, Math.round(samples.length * TARGET_RATE / rate));
    var offline = new OfflineAudioContext(1, frames, TARGET_RATE);
    var source = offline.createBufferSource();
    var buffer = offline.createBuffer(1, samples.length, rate);
    buffer.getChannelData(0).set(samples);
    source.buffer = buffer;
    source.connect(offline.destination);
    source.start();
    return offline.startRendering().then(function (rendered) { return rendered.getChannelData(0); });
  }

  function attach(options) {
    var form = options.form || document;
    var apiUrl = options.apiUrl || "/api/dictations/";
    var socketPath = options.socketPath || "/ws/dictations/";
    var button = options.button || null;
    var statusLine = options.status || null;
    var csrfInput = form.querySelector ? form.querySelector("input[name=csrfmiddlewaretoken]") : null;
    var csrfToken = options.csrfToken || (csrfInput && csrfInput.value) || cookie("csrftoken");
    var target = form.querySelector("textarea[data-section]");  // where the next text goes
    var caret = null;                                             // {start, end} in `target`
    var backend = null;
    var recorder = null;
    var recognition = null;
    var applied = {};                                             // dictation id → true once inserted
    var mine = {};                                                // ids of the dictations this page sent
    var early = {};                                               // results that came before their upload's answer

    function say(message, kind) {
      if (!statusLine) { return; }
      statusLine.textContent = message;
      statusLine.className = "dictation-status" + (kind ? " " + kind : "");
    }

    function fields() {
      var selector = "textarea[data-section], input[data-field], select[data-field]";
      return Array.prototype.slice.call(form.querySelectorAll(selector));
    }

    // Remember where the cursor was: clicking the record button takes the focus away from the text.
    form.addEventListener("focusin", function (event) {
      if (event.target.matches && event.target.matches("textarea[data-section], input[data-field]")) {
        target = event.target;
      }
    });
    ["keyup", "mouseup", "select", "input"].forEach(function (name) {
      form.addEventListener(name, function (event) {
        if (event.target === target && "selectionStart" in target) {
          caret = { start: target.selectionStart, end: target.selectionEnd };
        }
      });
    });

    function insert(text) {
      if (!target || !text) { return; }
      var value = target.value;
      var start = caret ? caret.start : value.length;
      var end = caret ? caret.end : value.length;
      var before = value.slice(0, start);
      var after = value.slice(end);
      // A space between the dictated words and the text around them, unless punctuation or a line break joins them.
      if (before && !/[\s(]$/.test(before) && !/^[.,;:\n]/.test(text)) { text = " " + text; }
      if (after && !/^[\s.,;:)]/.test(after) && !/[\s]$/.test(text)) { text = text + " "; }
      target.value = before + text + after;
      var position = before.length + text.length;
      if ("setSelectionRange" in target) { target.setSelectionRange(position, position); }
      caret = { start: position, end: position };
      target.dispatchEvent(new Event("input", { bubbles: true }));
    }

    function move(step) {
      var list = fields();
      var index = list.indexOf(target);
      var next = list[Math.max(0, Math.min(list.length - 1, index + step))];
      if (!next) { return; }
      next.focus();
      target = next;
      var length = "value" in next ? next.value.length : 0;
      caret = { start: length, end: length };
    }

    function command(segment) {
      if (options.onCommand && options.onCommand(segment)) { return; }
      if (segment.command === "next_field") { move(1); }
      else if (segment.command === "previous_field") { move(-1); }
      else if (segment.command === "insert_macro") {
        if (segment.text) { insert(segment.text); } else { say(segment.error || "no such macro", "error"); }
      } else if (segment.command === "sign_report") {
        var sign = document.querySelector("[data-command=sign]");
        if (sign) { sign.click(); say("“Sign report”: confirm in the signing dialog."); }
      }
    }

    // Only this page's dictations are inserted here: the same report open in another tab gets its own.
    function receive(message) {
      if (mine[message.dictation_id]) { apply(message); } else { early[message.dictation_id] = message; }
    }

    function claim(dictation) {
      mine[dictation.id] = true;
      if (early[dictation.id]) { apply(early[dictation.id]); delete early[dictation.id]; }
      return dictation;
    }

    function apply(message) {
      // The same result may come over the WebSocket and from polling: insert it once.
      if (applied[message.dictation_id]) { return; }
      applied[message.dictation_id] = true;
      form.dispatchEvent(new CustomEvent("dictation:result", { detail: message, bubbles: true }));
      if (message.report_id !== options.reportId) { return; }
      if (message.kind === "dictation.failed") {
        say("Dictation failed: " + message.error + ". The report is unchanged.", "error");
        return;
      }
      (message.segments || []).forEach(function (segment) {
        if (segment.type === "text") { insert(segment.text); } else { command(segment); }
      });
      say(message.transcript ? "Inserted: “" + message.transcript + "”" : "Nothing was recognised.");
    }

    function listen() {
      if (!window.WebSocket) { return; }
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var delay = 1000;
      function open() {
        var socket = new WebSocket(scheme + window.location.host + socketPath);
        socket.addEventListener("open", function () { delay = 1000; });
        socket.addEventListener("message", function (event) {
          var message;
          try { message = JSON.parse(event.data); } catch (error) { return; }
          if (message.kind) { receive(message); }
        });
        socket.addEventListener("close", function (event) {
          if (event.code === 4401) { return; }  // signed out
          setTimeout(open, delay);
          delay = Math.min(delay * 2, 30000);
        });
      }
      open();
    }

    function post(body, isForm) {
      var headers = { "Accept": "application/json", "X-CSRFToken": csrfToken };
      if (!isForm) { headers["Content-Type"] = "application/json"; }
      return fetch(apiUrl, {
        method: "POST", credentials: "same-origin", headers: headers, body: isForm ? body : JSON.stringify(body)
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (response.status !== 201) {
            var reason = data.detail || (data.audio && data.audio[0]) ||
              (data.non_field_errors && data.non_field_errors[0]) ||
              ("HTTP " + response.status);
            throw new Error(reason);
          }
          return data;
        });
      });
    }

    function section() { return target && target.getAttribute("data-section") || ""; }

    // Should the WebSocket be down, the result is fetched instead: every few seconds until it is done or failed.
    function watch(dictation) {
      var delay = 3000;
      function poll() {
        if (applied[dictation.id]) { return; }
        fetch(apiUrl + dictation.id + "/", { credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (response) { return response.ok ? response.json() : null; })
          .then(function (data) {
            if (data && (data.status === "done" || data.status === "failed")) {
              apply({ kind: "dictation." + data.status, dictation_id: data.id, report_id: data.report,
                      section: data.section, status: data.status, transcript: data.transcript,
                      segments: data.segments, error: data.error });
            } else {
              delay = Math.min(delay * 1.5, 30000);
              setTimeout(poll, delay);
            }
          }, function () { setTimeout(poll, delay); });
      }
      setTimeout(poll, delay);
      return dictation;
    }

    function upload(blob) {
      var body = new FormData();
      body.append("report", String(options.reportId));
      body.append("section", section());
      body.append("audio", blob, "dictation.wav");
      say("Transcribing…");
      return post(body, true).then(claim).then(watch, function (error) {
        say("Not uploaded: " + error.message, "error");
      });
    }

    function startRecording() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        say("This browser cannot record audio here (a secure https page is needed).", "error");
        return Promise.resolve(false);
      }
      // The raw signal: echo cancellation, noise suppression and gain control are tuned for calls and cost the
      // recogniser words (measured with pocketsphinx: "small effusion with the the no new" with them, "mild left
      // pleural effusion with basal …" without).
      var raw = { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false };
      return navigator.mediaDevices.getUserMedia({ audio: raw })
        .then(function (stream) {
          var context = new (window.AudioContext || window.webkitAudioContext)();
          var source = context.createMediaStreamSource(stream);
          // ScriptProcessorNode works everywhere without a separate worklet file; a recording is short.
          var processor = context.createScriptProcessor(4096, 1, 1);
          var chunks = [];
          var total = 0;
          var limit = backend ? backend.max_seconds * context.sampleRate : Infinity;
          processor.onaudioprocess = function (event) {
            if (total >= limit) { stop(); return; }
            var chunk = new Float32Array(event.inputBuffer.getChannelData(0));
            chunks.push(chunk);
            total += chunk.length;
          };
          source.connect(processor);
          processor.connect(context.destination);
          recorder = { context: context, stream: stream, source: source, processor: processor, chunks: chunks };
          say("Recording… click again (or press Ctrl+Shift+D) to stop.");
          return true;
        }, function (error) {
          say("The microphone is not available: " + error.message, "error");
          return false;
        });
    }

    function stopRecording() {
      var current = recorder;
      recorder = null;
      current.processor.disconnect();
      current.source.disconnect();
      current.stream.getTracks().forEach(function (track) { track.stop(); });
      var rate = current.context.sampleRate;
      current.context.close();
      return resample(joinChunks(current.chunks), rate).then(function (samples) {
        if (!samples.length) { say("Nothing was recorded."); return null; }
        return upload(encodeWav(samples, TARGET_RATE));
      });
    }

    // Text recognised in the browser (or typed commands): posted, parsed by the server, applied like a transcript.
    function sendTranscript(text) {
      return post({ report: options.reportId, section: section(), transcript: text }).then(claim).then(function (data) {
        apply({ kind: "dictation.done", dictation_id: data.id, report_id: data.report, section: data.section,
                status: data.status, transcript: data.transcript, segments: data.segments, error: "" });
        return data;
      }, function (error) { say("Not sent: " + error.message, "error"); });
    }

    function startRecognition() {
      var Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
      recognition = new Recognition();
      recognition.lang = "en-US";
      recognition.continuous = true;
      recognition.interimResults = false;
      recognition.addEventListener("result", function (event) {
        for (var i = event.resultIndex; i < event.results.length; i++) {
          if (event.results[i].isFinal) {
            sendTranscript(event.results[i][0].transcript);
          }
        }
      });
      recognition.addEventListener("end", function () { recognition = null; update(); });
      recognition.addEventListener("error", function (event) { say("Speech recognition: " + event.error, "error"); });
      recognition.start();
      say("Listening (the browser recognises the speech)…");
      return Promise.resolve(true);
    }

    function recording() { return Boolean(recorder || recognition); }

    function update() {
      if (!button) { return; }
      button.setAttribute("aria-pressed", recording() ? "true" : "false");
      button.textContent = recording() ? "■ Stop dictation" : "● Dictate";
    }

    function start() {
      if (recording()) { return Promise.resolve(true); }
      var begin = backend && !backend.accepts_audio ? startRecognition : startRecording;
      return begin().then(function (started) { update(); return started; });
    }

    function stop() {
      if (recognition) { recognition.stop(); return Promise.resolve(); }
      if (!recorder) { return Promise.resolve(); }
      var done = stopRecording();
      update();
      return done;
    }

    function toggle() { return recording() ? stop() : start(); }

    var ready = fetch(apiUrl + "backend/", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (info) {
        backend = info;
        var browserOnly = info && !info.accepts_audio;
        var hasRecognition = window.SpeechRecognition || window.webkitSpeechRecognition;
        if (button && browserOnly && !hasRecognition) {
          button.disabled = true;
          say("Dictation on this site uses the browser's speech recognition, which this browser does not offer.",
              "error");
        } else if (button) {
          button.disabled = false;
        }
      }, function () { say("Dictation is not available right now.", "error"); });

    if (button) {
      button.addEventListener("click", function () { toggle(); });
    }
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey && event.shiftKey && (event.key === "D" || event.key === "d")) {
        event.preventDefault();
        toggle();
      }
    });
    listen();
    return { start: start, stop: stop, toggle: toggle, recording: recording, sendTranscript: sendTranscript,
             ready: ready };
  }

  window.RadiologyDictation = { attach: attach, encodeWav: encodeWav };

  // The panel of _dictation.html attaches itself to the editor form on the page.
  function attachPanel() {
    var panel = document.getElementById("dictation-panel");
    if (!panel || panel.dictation) { return; }
    panel.dictation = attach({
      reportId: Number(panel.getAttribute("data-report-id")),
      form: document.getElementById(panel.getAttribute("data-form") || "report-editor") || document,
      button: panel.querySelector("[data-dictation=toggle]"),
      status: panel.querySelector("[data-dictation=status]"),
      apiUrl: panel.getAttribute("data-api-url") || undefined,
      socketPath: panel.getAttribute("data-socket-path") || undefined
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", attachPanel);
  } else {
    attachPanel();
  }
})();
