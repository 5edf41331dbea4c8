// hermes-jupyter: %hermes /cells in JupyterLab 4 and Notebook 7. They apply only the first
// set_next_input payload of a reply; this one-shot widget inserts the other cells below it.
// The payload's cell ends with a marker line unique to this command: the widget finds that cell by it
// (not by position: an earlier /cells may have left the same code there), puts the first cell's code
// back without the marker and inserts the rest after it, in one transaction. It reaches the notebook
// through jupyterlab-manager's document context (model.widget_manager.context), which is not a
// documented API: feature-detected; where it is missing (VS Code, Colab, classic Notebook) it does nothing.
function render({ model, el }) {
  const cells = model.get("cells") || [];
  const marked = `${cells[0]}\n${model.get("marker")}`;
  const shared = model.widget_manager?.context?.model?.sharedModel;
  if (!shared || !Array.isArray(shared.cells) || typeof shared.insertCell !== "function" || !shared.changed) return;
  let finished = false;
  const stop = (msg) => {
    finished = true;
    shared.changed.disconnect(attempt);
    clearTimeout(timer);
    model.send(msg);
  };
  function attempt() {
    if (finished || model.get("state") !== "pending") return;
    const at = shared.cells.findIndex((c) => c.getSource?.() === marked);
    if (at < 0) return; // the reply, and its payload, come after this widget is shown
    shared.transact(() => {
      shared.cells[at].setSource(cells[0]);
      for (let i = 1; i < cells.length; i++) {
        shared.insertCell(at + i, { cell_type: "code", source: cells[i], metadata: { trusted: false } });
      }
    });
    stop({ type: "inserted", count: cells.length - 1 });
  }
  shared.changed.connect(attempt);
  // A page opened after the reply never gets the payload (nor does one that reloaded before it came).
  const timer = setTimeout(() => finished || stop({ type: "gave_up" }), 20000);
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
