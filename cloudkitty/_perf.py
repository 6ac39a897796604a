"""Helpers for the few places where CPython's own costs dominate."""

import gc


class gc_paused:
    """Pause the cyclic garbage collector, if it runs, for a ``with`` block.

    For code that allocates many container objects (tuples, dicts) that
    make no reference cycle and mostly outlive the block: each allocation
    counts towards a collection, and each collection scans every young
    object again, so that letting it run can double the block's time. The
    objects are still collected as usual once the collector runs again
    (the next allocation after the block, since they all count).

    The collector is re-enabled on leaving only if it ran on entering.
    Thread caveat: the switch is global to the process. While a block
    runs, every thread's allocations go uncollected; and blocks that
    overlap in two threads are not nested: the one entered first (which
    found the collector running) restarts it when it leaves, even though
    the other is still inside. Neither changes what any code computes, only
    when cycles are freed.
    """

    __slots__ = ('_restart',)

    def __enter__(self):
        self._restart = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc_info):
        if self._restart:
            gc.enable()
        return False
