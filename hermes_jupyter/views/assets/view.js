// hermes-jupyter: the live view of one turn, driven by the kernel's messages (views/live.py has the
// protocol). HTML from the kernel is built from escaped text and sanitized Markdown; strings of a
// control spec (button labels, notes) are set as text, never as HTML.

const fragment = (doc, html) => {
  const t = doc.createElement("template");
  t.innerHTML = html;
  return t.content;
};

// A request is not scrolled to while the user types somewhere else: a key within this many ms.
const TYPING_MS = 10000;

const timeLeft = (seconds) => {
  const s = Math.max(0, Math.floor(seconds));
  return s < 120 ? `${s}s` : `${Math.floor(s / 60)} min`;
};

class TurnView {
  constructor(el, send, resync) {
    this.doc = el.ownerDocument;
    this.send = send;
    this.resync = resync;
    this.n = -1;
    this.host = this.doc.createElement("div");
    this.host.className = "jp-RenderedHTMLCommon hermes-host"; // the typography of a rendered HTML output
    el.appendChild(this.host);
    this.timer = setInterval(() => this.tick(), 1000);
    this.attended = new Set(); // requests brought into view once (kept across reboots: not again after a reload)
    this.watched = new Map(); // part -> {io, chip}: a request named at the foot of the page while out of view
    this.typedAt = 0;
    this.onKey = () => (this.typedAt = Date.now());
    this.doc.addEventListener("keydown", this.onKey, true);
    this.reset();
  }

  reset() {
    this.host.textContent = "";
    this.root = this.doc.createElement("div");
    this.root.className = "hermes-turn hermes-live";
    const end = this.doc.createElement("hr");
    end.className = "hermes-end";
    this.root.appendChild(end);
    this.host.appendChild(this.root);
    this.parts = new Map();
    this.opens = new Map();
    this.specs = new Map();
    this.clock = null;
  }

  boot(msg) {
    this.reset();
    this.n = msg.n;
    for (const op of msg.doc) this.op(op);
    this.after();
  }

  apply(msg) {
    if (this.n < 0 || msg.n <= this.n) return; // not booted yet, or already in the snapshot
    if (msg.n !== this.n + 1) {
      this.n = -1; // a message went missing: start again from a snapshot
      this.resync();
      return;
    }
    this.n = msg.n;
    for (const op of msg.ops) this.op(op);
    this.after();
  }

  make(html) {
    const el = fragment(this.doc, html).firstElementChild;
    return el ?? this.doc.createElement("div");
  }

  slot(el) {
    return el.matches("[data-slot]") ? el : el.querySelector("[data-slot]") ?? el;
  }

  op([kind, id, a, b]) {
    const part = this.parts.get(id);
    switch (kind) {
      case "add": {
        const el = this.make(a);
        this.root.insertBefore(el, this.parts.get("foot") ?? this.root.lastElementChild);
        this.parts.set(id, el);
        break;
      }
      case "set": {
        if (!part) break;
        const el = this.make(a);
        if (part.matches("details.hermes-tool[open]") && el.matches("details.hermes-tool")) el.open = true; // unfolded by the user: stays so when the call ends
        part.replaceWith(el);
        this.parts.set(id, el);
        const open = this.opens.get(id);
        if (open) el.appendChild(open.el);
        this.controls(id, this.specs.get(id));
        break;
      }
      case "state": {
        const span = part?.querySelector(".hermes-state");
        if (span) span.textContent = a;
        break;
      }
      case "append":
        if (part) this.slot(part).append(fragment(this.doc, a));
        break;
      case "open": {
        this.opens.get(id)?.el.remove();
        if (!part) break;
        const el = a ? this.make(a) : this.doc.createElement("div");
        el.classList.add("hermes-open");
        const slot = this.slot(el);
        let tail = null;
        if (b) {
          tail = this.doc.createElement(b);
          tail.className = "hermes-tail";
          slot.appendChild(tail);
        }
        part.appendChild(el);
        this.opens.set(id, { el, slot, tail });
        break;
      }
      case "grow": {
        const open = this.opens.get(id);
        if (open) open.slot.insertBefore(fragment(this.doc, a), open.tail);
        break;
      }
      case "tail": {
        const open = this.opens.get(id);
        if (open?.tail) open.tail.innerHTML = a;
        break;
      }
      case "settle":
        this.opens.get(id)?.el.remove();
        this.opens.delete(id);
        if (part) part.append(fragment(this.doc, a));
        break;
      case "ctl":
        if (a) this.specs.set(id, a);
        else this.specs.delete(id);
        this.controls(id, a);
        break;
      case "done":
        for (const key of [...this.specs.keys()]) this.controls(key, null);
        this.specs.clear();
        this.clock = null;
        clearInterval(this.timer);
        break;
    }
  }

  controls(id, spec) {
    const part = this.parts.get(id);
    if (!part) return;
    part.querySelector(":scope > .hermes-controls")?.remove();
    this.unwatch(id);
    if (id === "head") this.clock = spec?.elapsed != null ? { t0: Date.now() - spec.elapsed * 1000, state: spec.state } : null;
    if (!spec) return;
    const box = this.doc.createElement("div");
    box.className = "hermes-controls";
    const button = (label, style, onclick) => {
      const b = this.doc.createElement("button");
      b.type = "button";
      b.className = `hermes-btn${style ? ` hermes-${style}` : ""}`;
      b.textContent = label;
      b.onclick = onclick;
      box.appendChild(b);
      return b;
    };
    for (const [label, action, value, style] of spec.buttons ?? []) {
      button(label, style, () => this.act(box, id, action, value));
    }
    if (spec.input != null) {
      if (spec.buttons?.length) box.appendChild(Object.assign(this.doc.createElement("div"), { className: "hermes-break" }));
      const input = this.doc.createElement("input");
      input.type = "text";
      input.className = "hermes-input";
      input.placeholder = spec.input;
      const submit = () => {
        const text = input.value.trim();
        if (text) this.act(box, id, "answer", text);
        else this.note(box, "Type an answer first, or pick a choice.");
      };
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") submit();
      });
      box.appendChild(input);
      button("Send", "primary", submit);
    }
    if (spec.deadline != null) {
      const span = this.doc.createElement("span");
      span.className = "hermes-countdown";
      span.dataset.deadline = String(Date.now() + spec.deadline * 1000);
      span.dataset.text = spec.countdown ?? "{left} left";
      box.appendChild(span);
    }
    if (spec.note) this.note(box, spec.note);
    part.appendChild(box);
    if (spec.attend) {
      this.attend(id, part, box);
      this.watch(id, part, box, spec.attend);
    }
    this.tick();
  }

  // Once, when a request appears: bring its buttons into view. A Run All leaves the notebook scrolled to its
  // last cell while the cell that waits for the answer blocks every cell below it; nothing else says why.
  attend(id, part, box) {
    if (this.attended.has(id)) return;
    this.attended.add(id);
    requestAnimationFrame(() => {
      if (!box.isConnected || this.typingElsewhere(part)) return;
      part.scrollIntoView({ block: "nearest" }); // nothing moves if it is in view already
      box.scrollIntoView({ block: "nearest" }); // a card taller than the view: its buttons win
    });
  }

  // While the request waits out of view, a chip at the foot of the page says where, with a button to go there:
  // after a scroll away, or when it appeared while the user typed elsewhere. Gone once answered or in view.
  watch(id, part, box, what) {
    if (typeof IntersectionObserver === "undefined") return;
    let list = this.doc.querySelector("body > .hermes-waiting-list");
    if (!list) {
      list = Object.assign(this.doc.createElement("div"), { className: "hermes-waiting-list" });
      this.doc.body.appendChild(list);
    }
    const chip = Object.assign(this.doc.createElement("div"), { className: "hermes-waiting", hidden: true });
    chip.setAttribute("role", "status");
    chip.append(`⚠ Hermes is waiting for ${what}${this.where(part)}`);
    const go = Object.assign(this.doc.createElement("button"), { type: "button", className: "hermes-btn", textContent: "Show" });
    go.onclick = () => {
      part.scrollIntoView({ block: "nearest" });
      box.scrollIntoView({ block: "nearest" });
      box.querySelector("button")?.focus({ preventScroll: true });
    };
    chip.appendChild(go);
    list.appendChild(chip);
    const io = new IntersectionObserver(([entry]) => (chip.hidden = entry.isIntersecting));
    io.observe(box);
    this.watched.set(id, { io, chip });
  }

  unwatch(id) {
    const w = this.watched.get(id);
    if (!w) return;
    w.io.disconnect();
    w.chip.remove();
    this.watched.delete(id);
  }

  where(part) {
    const cell = part.closest(".jp-Cell");
    const cells = cell?.parentElement ? [...cell.parentElement.children].filter((c) => c.classList.contains("jp-Cell")) : [];
    const i = cells.indexOf(cell);
    return i >= 0 ? ` in cell ${i + 1}` : " in a cell above";
  }

  typingElsewhere(part) {
    const a = this.doc.activeElement;
    const editable = !!a && (a.isContentEditable || a.matches("input, textarea, select"));
    return editable && !part.contains(a) && Date.now() - this.typedAt < TYPING_MS;
  }

  note(box, text) {
    let span = box.querySelector(".hermes-note");
    if (!span) {
      span = this.doc.createElement("span");
      span.className = "hermes-note";
      box.appendChild(span);
    }
    span.textContent = text;
  }

  act(box, id, action, value) {
    for (const el of box.querySelectorAll("button, input")) el.disabled = true;
    this.send({ type: "act", part: id, action, value: value ?? null });
  }

  tick() {
    const now = Date.now();
    for (const span of this.root.querySelectorAll(".hermes-countdown")) {
      span.textContent = span.dataset.text.replace("{left}", timeLeft((Number(span.dataset.deadline) - now) / 1000));
    }
    const state = this.clock && this.parts.get("head")?.querySelector(".hermes-state");
    if (state) state.textContent = `${this.clock.state} ${Math.round((now - this.clock.t0) / 1000)}s`;
  }

  after() {
    for (const pre of this.root.querySelectorAll("pre.hermes-code:not([data-copy])")) {
      pre.dataset.copy = "";
      const b = this.doc.createElement("button");
      b.type = "button";
      b.className = "hermes-copy";
      b.textContent = "Copy";
      b.title = "Copy the code";
      b.onclick = () => this.copy(pre, b);
      pre.appendChild(b);
    }
  }

  async copy(pre, button) {
    const text = pre.querySelector("code")?.innerText ?? "";
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = Object.assign(this.doc.createElement("textarea"), { value: text });
      this.doc.body.appendChild(area);
      area.select();
      this.doc.execCommand("copy");
      area.remove();
    }
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy"), 1500);
  }

  destroy() {
    clearInterval(this.timer);
    for (const id of [...this.watched.keys()]) this.unwatch(id);
    this.doc.removeEventListener("keydown", this.onKey, true);
    this.host.remove();
  }
}

export function create(el, send, resync) {
  return new TurnView(el, send, resync);
}
