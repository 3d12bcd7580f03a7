// Refreshes the page's regions from ?fragment=1 and filters the load
// balancer list in the browser; nothing is loaded from anywhere else.
(function () {
  "use strict";
  var filter = document.getElementById("filter");
  var state = document.getElementById("refresh-state");
  var every = Number(document.body.dataset.refreshMs) || 2000;

  function applyFilter() {
    var terms = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var lbs = document.querySelectorAll("#lbs .lb");
    var shown = 0;
    lbs.forEach(function (lb) {
      var text = lb.dataset.search || "";
      var match = terms.every(function (t) { return text.indexOf(t) >= 0; });
      lb.classList.toggle("hidden", !match);
      if (match) { shown++; }
    });
    document.getElementById("filter-count").textContent =
      terms.length ? shown + " of " + lbs.length + " shown" : lbs.length + " listed";
  }

  function refresh() {
    fetch("?fragment=1", { cache: "no-store" }).then(function (resp) {
      if (!resp.ok) { throw new Error("HTTP " + resp.status); }
      return resp.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll(".region").forEach(function (old) {
        var fresh = doc.getElementById(old.id);
        if (fresh) { old.replaceWith(fresh); }
      });
      applyFilter();
      state.textContent = "live · updated " + new Date().toLocaleTimeString();
    }).catch(function (err) {
      state.textContent = "refresh failed (" + err.message + "); retrying";
    }).finally(function () {
      setTimeout(refresh, every);
    });
  }

  filter.addEventListener("input", applyFilter);
  applyFilter();
  setTimeout(refresh, every);
})();
