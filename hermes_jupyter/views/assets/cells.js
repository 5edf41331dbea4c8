// hermes-jupyter: %hermes /cells in JupyterLab 4 and Notebook 7. They apply only the first
// set_next_input payload of a reply; this one-shot widget inserts the other cells below it.
// The payload's cell ends with a marker line unique to this command: the widget finds that cell by it
// (not by position: an earlier /cells may have left the same code there), puts the first cell's code
// back without the marker and inserts the rest after it, in one transaction. A cell already below is not
// inserted again: one that starts with a "# hermes: session …" header and holds the same code (the
// header's turn number left out: a second Run All in the same kernel numbers its turns on). So a second
// Run All, or a notebook that ships the cells, gets no copies; when every cell is there, the payload's
// cell goes too. It reaches the notebook
// through jupyterlab-manager's document context (model.widget_manager.context), which is not a
// documented API: feature-detected; where it is missing (VS Code, Colab, classic Notebook) it does nothing.
function render({ model, el }) {
  const cells = model.get("cells") || [];
  const marked = `${cells[0]}\n${model.get("marker")}`;
  const shared = model.widget_manager?.context?.model?.sharedModel;
  if (!shared || !Array.isArray(shared.cells) || typeof shared.insertCell !== "function"
      || typeof shared.deleteCell !== "function" || !shared.changed) return;
  // The code of a cell /cells made: its text without the "# hermes: …" lines it starts with.
  const code = (source) => {
    const lines = source.split("\n");
    let i = 0;
    while (i < lines.length && lines[i].startsWith("# hermes: ")) i++;
    return lines.slice(i).join("\n").trim();
  };
  const made = (source) => source.startsWith("# hermes: session ");
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
    const below = new Set(shared.cells.slice(at + 1).map((c) => c.getSource?.() ?? "").filter(made).map(code));
    const missing = cells.filter((source) => !below.has(code(source)));
    shared.transact(() => {
      if (missing.length === 0) {
        shared.deleteCell(at);
        return;
      }
      shared.cells[at].setSource(missing[0]);
      for (let i = 1; i < missing.length; i++) {
        shared.insertCell(at + i, { cell_type: "code", source: missing[i], metadata: { trusted: false } });
      }
    });
    stop({ type: "inserted", count: Math.max(missing.length - 1, 0), present: cells.length - missing.length });
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
