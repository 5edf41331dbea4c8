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

function render({ model, el }) {
  const doc = el.ownerDocument;
  let view = null;
  let closed = false;
  let chain = Promise.resolve();
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
  if (!showFinal()) {
    el.textContent = "Hermes: connecting to the kernel…";
    hello();
  }
  return () => {
    closed = true;
    model.off("msg:custom", onMessage);
    model.off("change:final_html", showFinal);
    view?.destroy();
  };
}

export default { render };
