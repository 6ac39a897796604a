"""Waiting in tests that start threads: for a condition, and for the
threads they started to be gone."""

import contextlib
import threading
import time


def wait_for(predicate, timeout, interval=0.02):
    """Call ``predicate`` until it is true; ``False`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


@contextlib.contextmanager
def no_new_threads(grace):
    """Fail if threads started inside the block still run ``grace``
    seconds after it."""
    before = set(threading.enumerate())
    yield

    def stray():
        return [thread for thread in threading.enumerate()
                if thread not in before and thread.is_alive()]
    wait_for(lambda: not stray(), grace)
    assert stray() == []
