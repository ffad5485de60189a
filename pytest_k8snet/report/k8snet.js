/* pytest-k8snet: one floating tooltip for the matrix cells of the cluster section.
 * The cells carry their text in data-tip; without this script a CSS tooltip shows it. */
(function () {
  "use strict";
  var script = document.currentScript;
  var root = (script && script.closest(".k8s")) || document.getElementById("k8snet");
  if (!root) { return; }
  root.classList.add("k8s-js");
  var tip = document.createElement("div");
  tip.className = "k8s-float-tip";
  tip.id = "k8s-float-tip";
  tip.setAttribute("role", "tooltip");
  tip.hidden = true;
  root.appendChild(tip);
  var current = null;

  function show(cell) {
    current = cell;
    tip.textContent = cell.getAttribute("data-tip");
    tip.className = "k8s-float-tip k8s-tip-" + (cell.getAttribute("data-status") || "none");
    tip.hidden = false;
    var r = cell.getBoundingClientRect();
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var vw = document.documentElement.clientWidth, vh = document.documentElement.clientHeight;
    var x = r.right + 6, y = r.top;
    if (x + w > vw - 8) { x = Math.max(8, r.left - w - 6); }
    if (y + h > vh - 8) { y = Math.max(8, vh - h - 8); }
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  function hide() { current = null; tip.hidden = true; }

  function cellOf(target) {
    return target && target.closest ? target.closest("td.k8s-cell[data-tip]") : null;
  }

  root.addEventListener("mouseover", function (ev) {
    var cell = cellOf(ev.target);
    if (cell && cell !== current) { show(cell); } else if (!cell) { hide(); }
  });
  root.addEventListener("mouseleave", hide);
  root.addEventListener("focusin", function (ev) {
    var cell = cellOf(ev.target);
    if (cell) { show(cell); }
  });
  root.addEventListener("focusout", hide);
  window.addEventListener("scroll", hide, true);
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { hide(); } });
})();
