/* Warehouse kanban: drag cards between columns (SortableJS), put cards moved by a button into their new
   column, show refusals in the alert area, and tick the SLA countdowns. The server decides every move. */
(function () {
  "use strict";

  const board = document.querySelector(".kanban-board");
  if (!board) return;
  const alertArea = document.getElementById("kanban-alert");
  const formats = JSON.parse(document.getElementById("kanban-durations").textContent);
  const csrfToken = (JSON.parse(document.body.getAttribute("hx-headers") || "{}"))["X-CSRFToken"] || "";

  // --- Alerts ------------------------------------------------------------------------------------

  function showAlert(html) {
    alertArea.innerHTML = html;
    alertArea.classList.remove("flash");
    void alertArea.offsetWidth; // restart the flash animation
    alertArea.classList.add("flash");
  }

  function showMessage(text) {
    const p = document.createElement("p");
    p.className = "kanban-refusal";
    p.textContent = text;
    showAlert(p.outerHTML);
  }

  function clearAlert() {
    alertArea.innerHTML = "";
  }

  // --- Placing a card in the column of its status ------------------------------------------------

  function listFor(status) {
    const column = board.querySelector('.kanban-column[data-status="' + status + '"]');
    return column ? column.querySelector(".kanban-list") : null;
  }

  function comesAfter(card, other) {
    const a = Number(card.dataset.slaDue), b = Number(other.dataset.slaDue);
    return b > a || (b === a && Number(other.dataset.shipmentId) > Number(card.dataset.shipmentId));
  }

  function place(card) {
    card.removeAttribute("data-moved");
    const list = listFor(card.dataset.status);
    if (!list) { card.remove(); return; } // delivered or cancelled: off the board
    if (card.parentElement === list) return;
    const cards = Array.from(list.querySelectorAll(":scope > .kanban-card"));
    // Same order as the server: most urgent first; the shipped column shows the latest hand-over first.
    let before = card.dataset.status === "shipped" ? cards[0] : cards.find(function (other) { return comesAfter(card, other); });
    if (!before) before = list.querySelector(":scope > .kanban-more");
    list.insertBefore(card, before || null);
  }

  function refused(card) {
    card.classList.remove("is-refused");
    void card.offsetWidth;
    card.classList.add("is-refused");
    setTimeout(function () { card.classList.remove("is-refused"); }, 1500);
  }

  // --- Drag and drop -----------------------------------------------------------------------------

  function snapBack(card, from, oldIndex) {
    from.insertBefore(card, from.children[oldIndex] || null);
    refused(card);
  }

  function move(card, from, oldIndex) {
    const to = card.closest(".kanban-column").dataset.status;
    let reason = "";
    if (to === "exception") {
      reason = window.prompt(board.dataset.reasonPrompt) || "";
      if (!reason.trim()) { snapBack(card, from, oldIndex); return; }
    }
    card.classList.add("is-saving");
    fetch(card.dataset.moveUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken, "HX-Request": "true" },
      body: new URLSearchParams({ to: to, reason: reason }),
    }).then(function (response) {
      return response.text().then(function (text) {
        card.classList.remove("is-saving");
        if (response.redirected) { window.location.reload(); return; } // logged out meanwhile
        if (response.ok) {
          const template = document.createElement("template");
          template.innerHTML = text.trim();
          const fresh = template.content.firstElementChild;
          card.replaceWith(fresh);
          htmx.process(fresh);
          place(fresh);
          clearAlert();
          htmx.trigger(document.body, "kanban-changed");
          return;
        }
        snapBack(card, from, oldIndex);
        if (response.headers.get("X-Refusal-Code")) showAlert(text);
        else showMessage(board.dataset.errorMessage);
      });
    }).catch(function () {
      card.classList.remove("is-saving");
      snapBack(card, from, oldIndex);
      showMessage(board.dataset.errorMessage);
    });
  }

  if (board.dataset.canMove === "1" && window.Sortable) {
    // The held lane takes no drops and gives none: its parcels wait for their order to be released.
    board.querySelectorAll('.kanban-column:not([data-status="held"]) .kanban-list').forEach(function (list) {
      Sortable.create(list, {
        group: "kanban",
        sort: false, // a column's order is the server's (most urgent first)
        draggable: ".kanban-card",
        filter: "button, input, summary, a",
        preventOnFilter: false,
        animation: 150,
        delay: 200, // on a phone a long press drags, a swipe scrolls
        delayOnTouchOnly: true,
        onEnd: function (event) {
          if (event.from !== event.to) move(event.item, event.from, event.oldIndex);
        },
      });
    });
  }

  // --- Button moves (htmx) -------------------------------------------------------------------------

  // A refusal (409, 404, 400 with X-Refusal-Code) goes to the alert area instead of replacing the card.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    const xhr = event.detail.xhr;
    if (!xhr.getResponseHeader("X-Refusal-Code")) return;
    event.detail.shouldSwap = true;
    event.detail.isError = false;
    const card = event.detail.target && event.detail.target.closest(".kanban-card");
    if (card) refused(card);
    event.detail.target = alertArea;
    event.detail.swapOverride = "innerHTML";
    alertArea.classList.remove("flash");
    void alertArea.offsetWidth;
    alertArea.classList.add("flash");
  });

  htmx.onLoad(function (element) {
    if (element.matches && element.matches(".kanban-card[data-moved]")) {
      place(element);
      clearAlert();
    }
  });

  // --- Countdowns ----------------------------------------------------------------------------------

  function fill(format, values) {
    return format.replace(/%\((\w+)\)s/g, function (_match, key) { return values[key]; });
  }

  function duration(ms) {
    const minutes = Math.floor(Math.abs(ms) / 60000);
    const days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    if (days) return fill(formats.dh, { days: days, hours: hours });
    if (hours) return fill(formats.hm, { hours: hours, minutes: mins });
    return fill(formats.m, { minutes: mins });
  }

  function tick() {
    const now = Date.now();
    board.querySelectorAll(".kanban-card").forEach(function (card) {
      const age = card.querySelector(".kc-age");
      if (age) age.textContent = fill(formats.age, { time: duration(now - Number(age.dataset.created)) });
      // A parcel handed over shows when it shipped; only the others count down.
      if (card.dataset.status === "shipped" || card.dataset.status === "delivered") return;
      const left = Number(card.dataset.slaDue) - now;
      const sla = card.querySelector(".kc-sla");
      if (sla) sla.textContent = fill(left < 0 ? formats.overdue : formats.due, { time: duration(left) });
      card.classList.toggle("is-overdue", left < 0);
      card.classList.toggle("is-due-soon", left >= 0 && left < formats.due_soon_ms);
    });
  }

  setInterval(tick, 30000);
})();
