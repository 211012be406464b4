// Series thumbnails: an image the server cannot render (it answers 404/422 with a reason) is replaced by a
// short note instead of the browser's broken-image icon.
(function () {
  "use strict";
  function replace(image) {
    var note = document.createElement("span");
    note.className = "no-image";
    note.textContent = "no preview";
    image.replaceWith(note);
  }
  document.querySelectorAll("img.thumbnail").forEach(function (image) {
    if (image.complete && image.naturalWidth === 0 && image.getAttribute("src")) {
      replace(image);
    } else {
      image.addEventListener("error", function () { replace(image); });
    }
  });
})();
