(function () {
  "use strict";
  function param(name) {
    var pattern = new RegExp("(?:^|[#?&])" + name + "=([^&#]*)");
    var match = pattern.exec(location.hash) || pattern.exec(location.search);
    return match ? decodeURIComponent(match[1]) : null;
  }
  function fromUrl() {
    var value = parseFloat(param("slider"));
    return isNaN(value) ? 50 : Math.min(100, Math.max(0, value));
  }
  function zoomFromUrl() {
    var value = param("zoom");
    return value === "1" || value === "2" || value === "4" ? value : "fit";
  }
  function setup(cmp) {
    var stage = cmp.querySelector(".stage"), viewport = cmp.querySelector(".viewport");
    var range = cmp.querySelector("input.slider"), divider = cmp.querySelector(".divider");
    var after = cmp.querySelector("img.after"), befores = cmp.querySelectorAll("img.before");
    var leftTag = cmp.querySelector(".tag.left"), buttons = cmp.querySelectorAll("button[data-zoom]");
    function set(pos) {
      pos = Math.min(100, Math.max(0, pos));
      var clip = "inset(0 " + (100 - pos) + "% 0 0)";
      for (var i = 0; i < befores.length; i++) { befores[i].style.clipPath = clip; befores[i].style.webkitClipPath = clip; }
      divider.style.left = pos + "%";
      range.value = pos;
      cmp.dataset.pos = pos;
    }
    cmp.setSlider = set;
    range.addEventListener("input", function () { set(parseFloat(range.value)); });
    var dragging = false;
    function follow(event) {
      var box = stage.getBoundingClientRect();
      set((event.clientX - box.left) / box.width * 100);
    }
    stage.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      dragging = true;
      stage.setPointerCapture(event.pointerId);
      follow(event);
      event.preventDefault();
    });
    stage.addEventListener("pointermove", function (event) { if (dragging) follow(event); });
    stage.addEventListener("pointerup", function () { dragging = false; });
    stage.addEventListener("pointercancel", function () { dragging = false; });
    function enlarged() {  // fit mode showing the page at 2× or more: show its pixels, not a blur
      var natural = after.naturalWidth || parseInt(cmp.dataset.w, 10);
      cmp.classList.toggle("enlarged", stage.clientWidth * (window.devicePixelRatio || 1) >= 2 * natural);
    }
    cmp.enlarged = enlarged;
    function zoom(level) {
      for (var i = 0; i < buttons.length; i++) buttons[i].setAttribute("aria-pressed", String(buttons[i].dataset.zoom === level));
      if (level === "fit") { cmp.classList.remove("zoomed"); return; }
      var natural = after.naturalWidth || parseInt(cmp.dataset.w, 10);
      stage.style.setProperty("--zw", (natural * parseFloat(level) / (window.devicePixelRatio || 1)) + "px");
      cmp.classList.add("zoomed");
      viewport.scrollLeft = parseFloat(cmp.dataset.pos) / 100 * stage.offsetWidth - viewport.clientWidth / 2;
      viewport.scrollTop = (stage.offsetHeight - viewport.clientHeight) / 2;
    }
    for (var b = 0; b < buttons.length; b++) {
      buttons[b].addEventListener("click", function () { zoom(this.dataset.zoom); });
    }
    var radios = cmp.querySelectorAll("input[type=radio]");
    for (var r = 0; r < radios.length; r++) {
      radios[r].addEventListener("change", function () { left(this.value); });
    }
    cmp.zoom = zoom;
    function left(role) {  // which picture is left of the line: the input, or the clean target
      var radio = cmp.querySelector("input[type=radio][value=" + role + "]");
      if (!radio) return;
      radio.checked = true;
      for (var i = 0; i < befores.length; i++) befores[i].hidden = befores[i].dataset.role !== role;
      leftTag.textContent = radio.dataset.label;
    }
    cmp.left = left;
    set(fromUrl());
    left(param("left") === "clean" ? "clean" : "degraded");
    if (after.complete) enlarged(); else after.addEventListener("load", enlarged);
    var initialZoom = zoomFromUrl();
    if (initialZoom !== "fit") {
      if (after.complete) zoom(initialZoom); else after.addEventListener("load", function () { zoom(initialZoom); });
    }
  }
  var all = document.querySelectorAll(".compare");
  for (var i = 0; i < all.length; i++) setup(all[i]);
  window.addEventListener("hashchange", function () {
    var pos = fromUrl(), level = zoomFromUrl();
    var role = param("left") === "clean" ? "clean" : "degraded";
    for (var i = 0; i < all.length; i++) { all[i].setSlider(pos); all[i].zoom(level); all[i].left(role); }
  });
  window.addEventListener("resize", function () {
    for (var i = 0; i < all.length; i++) all[i].enlarged();
  });
})();
