// hermes-jupyter: the live view of one turn (an anywidget). This loader is all the widget carries,
// and all a saved notebook keeps of it; the view's code and stylesheet come from the kernel when a
// view connects, once per page (globalThis caches them by version).
const G = (globalThis.__hermesJupyter ??= { page: Math.random().toString(36).slice(2), mods: {} });

function styled(doc, v) {
  return !!doc.getElementById(`hermes-jupyter-css-${v}`);
}

function install(doc, v, js, css) {
  if (css && !styled(doc, v)) {
    const style = doc.createElement("style");
    style.id = `hermes-jupyter-css-${v}`;
    style.textContent = css;
    doc.head.appendChild(style);
  }
  if (!G.mods[v] && js) {
    G.mods[v] = import(URL.createObjectURL(new Blob([js], { type: "text/javascript" })));
  }
  return G.mods[v];
}

// The turn's saved-so-far output (views/snapshot.py) is hidden while its live view draws; a page that
// cannot draw the view (no kernel) shows it. One rule per turn, counted: a turn may have two views.
G.hidden ??= new Map();

function hideSnapshot(doc, turn) {
  if (!turn) return () => {};
  const key = `hermes-jupyter-hide-${turn}`;
  const count = G.hidden.get(key) ?? 0;
  if (!count && !doc.getElementById(key)) {
    const style = doc.createElement("style");
    style.id = key;
    style.textContent = `.hermes-snapshot-${CSS.escape(turn)}{display:none!important}`;
    doc.head.appendChild(style);
  }
  G.hidden.set(key, count + 1);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const left = (G.hidden.get(key) ?? 1) - 1;
    G.hidden.set(key, left);
    if (!left) doc.getElementById(key)?.remove();
  };
}

// How long a view waits for the kernel's first answer before it says the kernel is gone.
const NO_KERNEL_MS = 10000;

function render({ model, el }) {
  const doc = el.ownerDocument;
  let view = null;
  let closed = false;
  let booted = false;
  let stopped = false;
  let chain = Promise.resolve();
  let unhide = hideSnapshot(doc, model.get("turn"));
  // The kernel went away (died, restarted, shut down): no Stop button that nothing answers any more.
  const kernelGone = () => {
    if (closed || stopped || model.get("final_html")) return;
    stopped = true;
    const note = doc.createElement("p");
    note.className = "hermes-notice hermes-gone";
    note.textContent = model.get("gone_note") || "The kernel stopped.";
    if (view) { // it shows the turn as far as it got: the saved-so-far output stays hidden
      view.op(["done"]); // its controls and clock go
      const state = el.querySelector(".hermes-state");
      if (state) state.textContent = "the kernel stopped";
      const status = el.querySelector(".hermes-foot small")?.firstChild;
      if (status?.nodeType === 3) status.textContent = status.textContent.replace(/^running/, "interrupted");
      const turn = el.querySelector(".hermes-turn");
      turn?.insertBefore(note, turn.querySelector(".hermes-foot") ?? turn.lastElementChild);
    } else { // nothing drawn (a page opened after the kernel went): the saved-so-far output shows the turn
      unhide();
      el.textContent = "";
      el.appendChild(note);
    }
  };
  const timer = setTimeout(() => booted || kernelGone(), NO_KERNEL_MS);
  const send = (msg) => model.send({ ...msg, mid: Math.random().toString(36).slice(2) });
  const hello = () => send({ type: "hello", page: G.page, have: Object.keys(G.mods).filter((v) => styled(doc, v)) });
  const showFinal = () => {
    const html = model.get("final_html");
    if (!html) return false;
    view?.destroy();
    view = null;
    el.innerHTML = html; // the static rendering, built by the kernel from escaped and sanitized parts
    return true;
  };
  const handle = async (msg) => {
    if (closed || model.get("final_html")) return;
    if (msg.type === "boot") {
      booted = true;
      if (stopped) return; // it answered after all, too late: the note stays
      const mod = install(doc, msg.v, msg.js, msg.css);
      if (!mod) return hello(); // a boot meant for a view that had the code: ask for ours
      const code = await mod;
      if (closed) return;
      if (!view) {
        el.textContent = "";
        view = code.create(el, send, hello);
      }
      view.boot(msg);
    } else if (view) {
      view.apply(msg);
    }
  };
  const onMessage = (msg) => {
    chain = chain.then(() => handle(msg)).catch((err) => console.error("hermes-jupyter view:", err));
  };
  model.on("msg:custom", onMessage);
  model.on("change:final_html", showFinal);
  model.on("comm_live_update", kernelGone); // ipywidgets' managers: the comm closed with its kernel
  if (!showFinal()) {
    el.textContent = "Hermes: connecting to the kernel…";
    hello();
  }
  return () => {
    closed = true;
    clearTimeout(timer);
    unhide();
    model.off("msg:custom", onMessage);
    model.off("change:final_html", showFinal);
    model.off("comm_live_update", kernelGone);
    view?.destroy();
  };
}

export default { render };
