"""Long-lived threads that run one job at a time and stay for the next.

A turn used to start two threads that lived only for it: its worker and its dispatcher.
Each new thread takes whichever of glibc's per-thread malloc arenas is free, so what a
turn keeps (its answer, records, event log) was spread over several arenas among other
turns' garbage, on pages malloc_trim cannot give back: ~20 KiB of RSS a turn more than
the turn keeps (bench/RESULTS.md). A thread that stays allocates in the arena it has.

A job runs under the name it is given (``hermes-turn-<id>``...); between jobs the thread
is ``hermes-idle`` and holds nothing of the job it ran.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger("hermes_jupyter")

IDLE_NAME = "hermes-idle"


class Workers:
    """Threads for jobs; at most ``idle_max`` wait for the next one, the others end."""

    def __init__(self, idle_max: int = 4) -> None:
        self._idle: list[_Worker] = []
        self._idle_max = idle_max
        self._lock = threading.Lock()
        self._generation = 0  # a shutdown starts a new one: older threads end after their job

    def run(self, name: str, job: Callable[[], object]) -> None:
        """Run ``job`` on a waiting thread (named ``name`` while it runs), or on a new one."""
        with self._lock:
            worker = self._idle.pop() if self._idle else None
            if worker is None:
                worker = _Worker(self, self._generation)
        worker.give(name, job)

    def shutdown(self) -> None:
        """End the waiting threads; a busy one ends after its job (``%unload_ext`` leaves no thread
        behind). A later job starts a new thread."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._generation += 1
        for worker in idle:
            worker.stop()
        for worker in idle:
            worker.join(2.0)

    def _stay(self, worker: _Worker) -> bool:
        with self._lock:
            if worker.generation == self._generation and len(self._idle) < self._idle_max:
                self._idle.append(worker)
                return True
            return False


class _Worker:
    def __init__(self, pool: Workers, generation: int) -> None:
        self._pool = pool
        self.generation = generation
        self._jobs: queue.SimpleQueue[tuple[str, Callable[[], object]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def give(self, name: str, job: Callable[[], object]) -> None:
        self._jobs.put((name, job))
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._jobs.put(None)

    def join(self, timeout: float) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        me = threading.current_thread()
        while True:
            item = self._jobs.get()
            if item is None:
                return
            name, job = item
            del item
            me.name = name
            try:
                job()
            except BaseException:  # a job handles its own errors; this keeps the thread for the next
                log.exception("%s failed", name)
            del job  # the job holds its turn: an idle thread must not
            me.name = IDLE_NAME
            if not self._pool._stay(self):
                return


shared = Workers()  # the turns' workers and dispatchers
