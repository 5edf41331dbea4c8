// hermes-jupyter: %hermes /cells in JupyterLab 4 and Notebook 7. They apply only the first
// set_next_input payload of a reply; this one-shot widget inserts the other cells right below it.
// It reaches the notebook through jupyterlab-manager's document context (model.widget_manager.context),
// which is not a documented API: it is feature-detected, and where it is missing (VS Code, Colab,
// classic Notebook) the widget does nothing and shows nothing.
const G = (globalThis.__hermesJupyterCells ??= new Set()); // widgets handled in this page

function render({ model, el }) {
  const cells = model.get("cells") || [];
  const anchor = model.get("anchor");
  const shared = model.widget_manager?.context?.model?.sharedModel;
  if (!shared || !Array.isArray(shared.cells) || typeof shared.insertCell !== "function" || !shared.changed) return;
  const key = model.model_id || anchor;
  let finished = false;
  const source = (i) => shared.cells[i]?.getSource?.();
  const stop = (msg) => {
    finished = true;
    shared.changed.disconnect(attempt);
    clearTimeout(timer);
    model.send(msg);
  };
  function attempt() {
    if (finished || G.has(key) || model.get("state") !== "pending") return;
    const at = shared.cells.findIndex((c) => c.id === anchor);
    if (at < 0 || source(at + 1) !== cells[0]) return; // the payload's cell is not below the command yet
    G.add(key); // two views of this output in one page: the first one inserts
    // Cells already there (another page did it before a reload): only the missing ones go in.
    let present = 1;
    while (present < cells.length && source(at + 1 + present) === cells[present]) present++;
    shared.transact(() => {
      for (let i = present; i < cells.length; i++) {
        shared.insertCell(at + 1 + i, { cell_type: "code", source: cells[i], metadata: { trusted: false } });
      }
    });
    stop({ type: "inserted", count: cells.length - present });
  }
  // The reply (and its payload) comes after this widget is shown: wait for the first cell, not for a time.
  shared.changed.connect(attempt);
  const timer = setTimeout(() => finished || G.has(key) || stop({ type: "gave_up" }), 20000);
  attempt();
  return () => {
    if (!finished) {
      finished = true;
      shared.changed.disconnect(attempt);
      clearTimeout(timer);
    }
  };
}

export default { render };
