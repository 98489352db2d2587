// lith report site: progressive enhancement only. Every page is complete without
// this script; it adds filtering and sorting to tables that ask for it.
(function () {
  "use strict";

  function rowsOf(table) {
    return Array.prototype.slice.call(table.tBodies[0].rows);
  }

  // A text box filters on the row's text; each select filters on one data-*
  // attribute of the rows (<select data-table="ID" data-attr="kind">).
  function refilter(table) {
    var text = document.querySelector('[data-filter-table="' + table.id + '"]');
    var needle = text ? text.value.trim().toLowerCase() : "";
    var selects = Array.prototype.slice.call(document.querySelectorAll('select[data-table="' + table.id + '"]'));
    var shown = 0;
    rowsOf(table).forEach(function (row) {
      var ok = !needle || row.textContent.toLowerCase().indexOf(needle) !== -1;
      selects.forEach(function (sel) {
        if (sel.value && row.getAttribute("data-" + sel.getAttribute("data-attr")) !== sel.value) { ok = false; }
      });
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    var out = document.getElementById(table.id + "-count");
    if (out) { out.textContent = shown + " shown"; }
  }

  function sortBy(table, col, numeric, th) {
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", dir);
    var key = function (row) {
      var cell = row.cells[col];
      var v = cell.getAttribute("data-value");
      if (v === null) { v = cell.textContent.trim(); }
      return numeric ? parseFloat(v) || 0 : v.toLowerCase();
    };
    var rows = rowsOf(table);
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      var r = x < y ? -1 : x > y ? 1 : 0;
      return dir === "ascending" ? r : -r;
    });
    var body = table.tBodies[0];
    rows.forEach(function (row) { body.appendChild(row); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    // A link may ask for a filtered list (runs/index.html?status=failed): preselect
    // the status filters, when the value is one they offer.
    var wanted = new URLSearchParams(location.search).get("status");
    if (wanted) {
      ["run-status", "run-search-status"].forEach(function (id) {
        var sel = document.getElementById(id);
        if (sel && Array.prototype.some.call(sel.options, function (o) { return o.value === wanted; })) { sel.value = wanted; }
      });
    }
    Array.prototype.forEach.call(document.querySelectorAll("[data-filter-table], select[data-table]"), function (el) {
      var table = document.getElementById(el.getAttribute("data-filter-table") || el.getAttribute("data-table"));
      if (!table) { return; }
      el.addEventListener("input", function () { refilter(table); });
      el.addEventListener("change", function () { refilter(table); });
      refilter(table);
    });
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable th button[data-sort]"), function (btn) {
      var table = btn.closest("table");
      btn.addEventListener("click", function () {
        sortBy(table, parseInt(btn.getAttribute("data-sort"), 10), btn.hasAttribute("data-numeric"), btn.closest("th"));
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll("form.filters"), function (form) {
      form.addEventListener("submit", function (e) { e.preventDefault(); });
    });
    // Search over every run (runs/index.js), not only this page's rows: results
    // link straight to the run's page. Built with textContent, never markup.
    var search = document.querySelector("[data-search-runs]");
    if (search && window.LITH_RUNS) {
      var form = search.form;
      var list = document.getElementById(search.getAttribute("data-search-runs"));
      var status = document.querySelector('[data-search-status="' + search.id + '"]');
      var order = document.querySelector('[data-search-order="' + search.id + '"]');
      var orders = {
        "id-asc": function (a, b) { return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0; },
        "id-desc": function (a, b) { return a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0; },
        "ok-asc": function (a, b) { return (a[4] / (a[5] || 1)) - (b[4] / (b[5] || 1)) || a[4] - b[4]; }
      };
      var count = document.getElementById(search.id + "-count");
      var LIMIT = 100;
      form.hidden = false;
      var run = function () {
        var needle = search.value.trim().toLowerCase();
        var want = status ? status.value : "";
        while (list.firstChild) { list.removeChild(list.firstChild); }
        var by = order ? orders[order.value] : null;
        if (!needle && !want && !by) { list.hidden = true; count.textContent = ""; return; }
        var hits = window.LITH_RUNS.filter(function (r) {
          return (!want || r[2] === want) &&
            (!needle || r[0].toLowerCase().indexOf(needle) !== -1 || r[1].toLowerCase().indexOf(needle) !== -1);
        });
        // The index is in the list's own order (failing, then newest); a stable
        // sort keeps it among equals.
        if (by) { hits.sort(by); }
        hits.slice(0, LIMIT).forEach(function (r) {
          var li = document.createElement("li");
          var a = document.createElement("a");
          a.href = r[3];
          var code = document.createElement("code");
          code.className = "wrap";
          var bdi = document.createElement("bdi");
          bdi.textContent = r[0];
          code.appendChild(bdi);
          a.appendChild(code);
          li.appendChild(a);
          var badge = document.createElement("span");
          badge.className = "badge badge-" + (r[2] === "verified" ? "ok" : r[2] === "in_progress" ? "neutral" : r[2] === "uncommitted" ? "partial" : "error");
          badge.textContent = r[2];
          li.appendChild(document.createTextNode(" "));
          li.appendChild(badge);
          var meta = document.createElement("span");
          meta.className = "muted";
          meta.textContent = " " + r[4] + "/" + r[5] + " artifacts ok · " + r[1];
          li.appendChild(meta);
          list.appendChild(li);
        });
        list.hidden = hits.length === 0;
        count.textContent = hits.length === 0 ? "no run matches" :
          hits.length > LIMIT ? hits.length + " runs match; the first " + LIMIT + " are listed" :
          hits.length + (hits.length === 1 ? " run matches" : " runs match");
      };
      search.addEventListener("input", run);
      if (status) { status.addEventListener("change", run); }
      if (order) { order.addEventListener("change", run); }
      run();
    }
    // A permalink anchor (the "#" beside a run or an artifact) also copies its link;
    // a live region says so to screen readers.
    var live = document.createElement("p");
    live.className = "visually-hidden";
    live.setAttribute("aria-live", "polite");
    document.body.appendChild(live);
    function copied(link, url) {
      link.setAttribute("data-copied", "");
      live.textContent = "Link copied: " + url;
      setTimeout(function () { link.removeAttribute("data-copied"); }, 2000);
    }
    function fallbackCopy(text) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      return ok;
    }
    // Artifact rows carry their anchor as an id; their "#" is added here (one link
    // per row would be a tenth of a run page).
    Array.prototype.forEach.call(document.querySelectorAll("table.artifacts tbody tr[id]"), function (row) {
      var cell = row.cells[1];
      if (!cell) { return; }
      var link = document.createElement("a");
      link.className = "anchor";
      link.href = "#" + row.id;
      link.setAttribute("aria-label", "Link to this artifact");
      link.textContent = "#";
      cell.insertBefore(document.createTextNode(" "), cell.firstChild);
      cell.insertBefore(link, cell.firstChild);
    });
    Array.prototype.forEach.call(document.querySelectorAll("a.anchor"), function (link) {
      link.addEventListener("click", function () {
        var url = link.href;
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(url).then(function () { copied(link, url); }, function () {
            if (fallbackCopy(url)) { copied(link, url); }
          });
        } else if (fallbackCopy(url)) {
          copied(link, url);
        }
      });
    });
    // A link to a collapsed block (the promotion packet) opens it.
    function openTarget() {
      var id = decodeURIComponent(location.hash.slice(1));
      var el = id && document.getElementById(id);
      if (el && el.tagName === "DETAILS") { el.open = true; }
    }
    window.addEventListener("hashchange", openTarget);
    openTarget();
  });
}());
