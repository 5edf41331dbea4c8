"""util/workers.py: long-lived threads for a turn's jobs (a thread per job spread each
turn's kept objects over glibc's per-thread arenas)."""
from __future__ import annotations

import gc
import threading
import weakref

from hermes_jupyter.util.workers import IDLE_NAME, Workers

from .conftest import wait_until

TIMEOUT = 30


def run_and_wait(pool: Workers, name: str, job) -> threading.Thread:
    """Run job; the thread it ran on (once it is idle again)."""
    ran: list[threading.Thread] = []
    done = threading.Event()

    def wrapped() -> None:
        ran.append(threading.current_thread())
        assert ran[-1].name == name  # named after its job while it runs
        job()
        done.set()

    pool.run(name, wrapped)
    assert done.wait(TIMEOUT)
    return ran[0]


def idle(thread: threading.Thread) -> bool:
    return thread.name == IDLE_NAME


def test_jobs_one_after_another_run_on_the_same_thread():
    pool = Workers(idle_max=2)
    first = run_and_wait(pool, "job-1", lambda: None)
    wait_until(lambda: idle(first))
    second = run_and_wait(pool, "job-2", lambda: None)
    assert second is first and second.is_alive()


def test_jobs_at_once_get_their_own_threads_and_only_idle_max_of_them_stay():
    pool = Workers(idle_max=1)
    release, started = threading.Event(), threading.Barrier(4)
    threads: list[threading.Thread] = []

    def job() -> None:
        threads.append(threading.current_thread())
        started.wait(TIMEOUT)
        release.wait(TIMEOUT)

    for i in range(3):
        pool.run(f"busy-{i}", job)
    started.wait(TIMEOUT)
    assert len({id(t) for t in threads}) == 3
    release.set()
    wait_until(lambda: sum(t.is_alive() for t in threads) == 1)  # the others ended


def test_an_idle_thread_holds_nothing_of_the_job_it_ran():
    pool = Workers()

    class Turn:  # what a job holds
        pass

    turn = Turn()
    ref = weakref.ref(turn)
    thread = run_and_wait(pool, "hermes-turn-x", lambda t=turn: t)
    wait_until(lambda: idle(thread))
    del turn
    gc.collect()
    assert ref() is None


def test_a_failing_job_leaves_its_thread_for_the_next():
    pool = Workers()

    def boom() -> None:
        raise RuntimeError("boom")

    ran: list[threading.Thread] = []
    pool.run("failing", lambda: (ran.append(threading.current_thread()), boom()))
    wait_until(lambda: ran and idle(ran[0]))  # logged, and back waiting
    assert run_and_wait(pool, "after", lambda: None) is ran[0]


def test_shutdown_ends_the_waiting_threads_and_a_busy_one_after_its_job():
    pool = Workers()
    release, running = threading.Event(), threading.Event()
    busy: list[threading.Thread] = []
    pool.run("busy", lambda: (busy.append(threading.current_thread()), running.set(), release.wait(TIMEOUT)))
    assert running.wait(TIMEOUT)
    waiting = run_and_wait(pool, "done-job", lambda: None)  # its own thread: the other one is busy
    wait_until(lambda: idle(waiting))
    pool.shutdown()
    assert not waiting.is_alive()
    release.set()
    busy[0].join(TIMEOUT)
    assert not busy[0].is_alive()  # it did not stay after its job
    assert run_and_wait(pool, "later", lambda: None).is_alive()  # a later job gets a new thread
