"""The naive live view the streaming benchmark compares against (imported in the kernel).

One plain ``ipywidgets.HTML`` whose ``value`` is set to the whole answer,
rendered as Markdown, on every Token event: one comm message per token, each
carrying everything so far.
"""
from __future__ import annotations

import ipywidgets as w

from hermes_jupyter import events as ev
from hermes_jupyter.safety.markdown import render_markdown


class NaiveView:
    def __init__(self) -> None:
        self.widget = w.HTML()
        self.text = ""

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Token):
            self.text += event.text
            self.widget.value = render_markdown(self.text)


def show(prompt: str):
    """What a naive ``%hermes`` would do: start the turn, display the view, subscribe it."""
    from IPython.display import display

    from hermes_jupyter import get_engine

    turn = get_engine().submit(prompt)
    view = NaiveView()
    display(view.widget)
    turn.subscribe(view)
    return turn
