"""The engine: magic → ``Engine`` → ``Session`` → ``Turn`` (the handle) → typed events → views and store.

Nothing here imports ipywidgets. A turn's jobs are small classes: the event log
and its dispatcher (log.py), approval and clarify requests (requests.py,
broker.py), its run on a worker thread (runner.py); ``Turn`` (turn.py) is the handle.
"""
from hermes_jupyter.engine.broker import NO_ANSWER
from hermes_jupyter.engine.engine import Engine, SessionNameError
from hermes_jupyter.engine.requests import APPROVAL_CHOICES, ApprovalRequest, ClarifyRequest, NothingPending
from hermes_jupyter.engine.runner import CANCEL_GRACE
from hermes_jupyter.engine.session import Session
from hermes_jupyter.engine.turn import Turn

__all__ = ["APPROVAL_CHOICES", "CANCEL_GRACE", "NO_ANSWER", "ApprovalRequest", "ClarifyRequest", "Engine",
           "NothingPending", "Session", "SessionNameError", "Turn"]
