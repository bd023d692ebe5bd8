// triage review board: keyboard shortcuts, live updates (server-sent events) and small form helpers.
// htmx does the requests and swaps; this file only adds what htmx has no attribute for.
// No inline scripts, no eval: the page runs under script-src 'self'.
(function () {
  "use strict";

  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var selected = null;      // ticket id of the highlighted card
  var opened = null;        // ticket id shown in the panel
  var lastColumn = null;    // column of the card acted on (to select the next one after it moves)
  var lastIndex = 0;

  function cards() { return $$("#columns .card[data-ticket]"); }
  function cardFor(id) { return cards().filter(function (c) { return c.dataset.ticket === id; })[0] || null; }
  function columnOf(card) { var col = card && card.closest(".column"); return col ? col.dataset.column : null; }

  function highlight() {
    cards().forEach(function (c) {
      c.classList.toggle("selected", c.dataset.ticket === selected);
      c.classList.toggle("open", c.dataset.ticket === opened);
    });
  }

  function select(card) {
    if (!card) { return; }
    selected = card.dataset.ticket;
    highlight();
    card.scrollIntoView({ block: "nearest" });
    if (card.tagName === "A") { card.focus({ preventScroll: true }); }
  }

  function move(delta) {
    var all = cards();
    if (!all.length) { return; }
    var i = all.indexOf(cardFor(selected));
    select(all[Math.max(0, Math.min(all.length - 1, i < 0 ? 0 : i + delta))]);
  }

  function moveColumn(delta) {
    var cols = $$("#columns .column");
    var current = cardFor(selected);
    var ci = current ? cols.indexOf(current.closest(".column")) : 0;
    var row = current ? $$(".card[data-ticket]", cols[ci]).indexOf(current) : 0;
    for (var c = ci + delta; c >= 0 && c < cols.length; c += delta) {
      var list = $$(".card[data-ticket]", cols[c]);
      if (list.length) { select(list[Math.min(row, list.length - 1)]); return; }
    }
  }

  function openSelected() {
    var card = cardFor(selected);
    if (card && card.tagName === "A") { card.click(); }
  }

  function press(shortcut) {
    var button = $('#detail [data-shortcut="' + shortcut + '"]');
    if (button && !button.disabled) { button.click(); return true; }
    return false;
  }

  function focusField(id) {
    var el = document.getElementById(id);
    if (el) { el.focus(); if (el.select && el.tagName === "TEXTAREA") { el.setSelectionRange(el.value.length, el.value.length); } }
    return el;
  }

  function toggleHelp(force) {
    var help = $("#help");
    if (help) { help.hidden = force === undefined ? !help.hidden : !force; }
  }

  // --- the review form -----------------------------------------------------------------------------------
  function wireForm(root) {
    var form = $("#review-form", root);
    if (!form) { return; }
    var draft = $("#draft", form);
    var accept = $('[data-shortcut="a"]', form);
    var intent = $("#intent-picker", form);
    var team = $("#team-picker", form);
    var hint = $("#intent-hint", form);
    var map = {};
    try { map = JSON.parse(form.dataset.intentTeam || "{}"); } catch (e) { map = {}; }
    if (draft && accept) {
      // an edited draft is sent with "Edit & send"; Accept would silently drop the edit
      draft.addEventListener("input", function () {
        var edited = draft.value !== draft.dataset.original;
        accept.disabled = edited || !draft.dataset.original;  // nothing to accept without a draft
        accept.title = edited ? "the draft was edited: use Edit & send" : "";
      });
    }
    if (intent && team) {
      intent.addEventListener("change", function () {
        var corrected = intent.value && intent.value !== intent.dataset.predicted;
        if (corrected && map[intent.value]) { team.value = map[intent.value]; }
        if (hint) {
          hint.hidden = !corrected;
          hint.textContent = corrected ? "Intent corrected to " + intent.value + " (sent with your action; team set to " +
            (map[intent.value] || team.value) + " for Reassign)." : "";
        }
      });
    }
    $$('[data-wrong-intent]', form).forEach(function (b) {
      b.addEventListener("click", function () { focusField("intent-picker"); });
    });
    form.addEventListener("submit", function () {
      var card = cardFor(opened);
      lastColumn = columnOf(card);
      lastIndex = card ? $$(".card[data-ticket]", card.closest(".column")).indexOf(card) : 0;
    });
  }

  // --- live updates -------------------------------------------------------------------------------------
  var refreshTimer = null;
  function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      var target = $("#columns") || $("#dashboard");
      if (target && window.htmx) { window.htmx.trigger(target, "refresh"); }
    }, 200);
  }

  function reloadPanel(id) {
    var card = cardFor(id);
    if (card && window.htmx) { window.htmx.ajax("GET", card.getAttribute("href"), { target: "#detail", swap: "innerHTML" }); }
  }

  function connect() {
    var live = $("#live");
    if (!live || !window.EventSource) { return; }
    var source = new EventSource("/board/events");
    source.addEventListener("ready", function () { live.dataset.state = "on"; });
    source.addEventListener("decision", refresh);
    source.addEventListener("review", function (ev) {
      refresh();
      var data = {};
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      var me = document.body.dataset.actor || "";
      var byMe = data.by && me && (data.by === me || data.by.slice(-me.length - 1) === "/" + me);
      if (data.ticket_id === opened && !byMe) { reloadPanel(opened); }
    });
    source.addEventListener("error", function () {
      live.dataset.state = source.readyState === EventSource.CLOSED ? "off" : "retrying";
    });
  }

  // --- wiring -------------------------------------------------------------------------------------------
  document.addEventListener("htmx:afterSwap", function (ev) {
    var target = ev.detail.target;
    if (target.id === "detail") {
      var panel = $(".panel", target);
      opened = panel ? panel.dataset.ticket : null;
      if (opened) { selected = selected || opened; }
      wireForm(target);
      highlight();
    }
  });
  document.addEventListener("htmx:afterSettle", function (ev) {
    if (ev.detail.target.id !== "columns" && !(ev.detail.elt && ev.detail.elt.id === "columns")) { return; }
    var card = cardFor(selected);
    if (lastColumn && (!card || columnOf(card) !== lastColumn)) {
      // the card acted on moved (e.g. to resolved): select the next one in its old column
      var list = $$('#columns .column[data-column="' + lastColumn + '"] .card[data-ticket]');
      if (list.length) { card = list[Math.min(lastIndex, list.length - 1)]; selected = card.dataset.ticket; }
      lastColumn = null;
    }
    highlight();
  });
  document.addEventListener("click", function (ev) {
    var card = ev.target.closest && ev.target.closest("#columns .card[data-ticket]");
    if (card) { selected = card.dataset.ticket; highlight(); }
    if (ev.target.closest && ev.target.closest("[data-help]")) { toggleHelp(); }
  });

  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    var typing = t && t.matches && t.matches("input, textarea, select");
    if (ev.key === "Escape") {
      toggleHelp(false);
      if (typing) { t.blur(); }
      return;
    }
    if (typing) {
      if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter") {
        ev.preventDefault();
        if (t.id === "draft") { press("e-send"); }
        else if (t.id === "own_text") { press("r-send"); }
        else if (t.id === "team-picker") { press("t-send"); }
      }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var handled = true;
    switch (ev.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "h": moveColumn(-1); break;
      case "l": moveColumn(1); break;
      case "Enter": case "o": openSelected(); break;
      case "a": handled = press("a"); break;
      case "e": handled = !!focusField("draft"); break;
      case "r": {
        var own = $("#own-reply");
        if (own) { own.open = true; }
        handled = !!focusField("own_text");
        break;
      }
      case "t": handled = !!focusField("team-picker"); break;
      case "x": handled = press("x"); break;
      case "i": handled = press("i"); break;
      case "w": handled = !!focusField("intent-picker"); break;
      case "c": handled = press("c"); break;
      case "v": handled = press("v"); break;
      case "/": handled = !!focusField("f-team"); break;
      case "?": toggleHelp(); break;
      case "g": window.location.href = $("#columns") ? "/board/dashboard" : "/board"; break;
      default: handled = false;
    }
    if (handled) { ev.preventDefault(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    wireForm(document);
    connect();
  });
})();
