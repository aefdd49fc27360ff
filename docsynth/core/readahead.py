"""Iterators made ahead by threads: pyarrow's reading, decoding and writing release the GIL, so
producing items on other cores overlaps with consuming them (the mixer reads its sources with
`interleave` and gathers each shard's next row group with `prefetch`; the generate stage plans
its next wave, page images fitted with PIL, which releases the GIL too, while the engine works)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator


def prefetch(items: Iterator, depth: int = 2) -> Iterator:
    """The items of an iterator produced by a thread, up to depth ahead: pyarrow's reading,
    decoding and writing release the GIL, so producing overlaps with consuming on another core."""
    for _, x in interleave([lambda: items], workers=1, depth=depth):
        yield x


def interleave(sources: list[Callable[[], Iterator]], workers: int = 2, depth: int = 4) -> Iterator[tuple[int, object]]:
    """(i, item) for the items of sources[i]() for every i, made by `workers` threads: each source
    is read by one thread, in order, and a thread takes the next source when its own is done (so
    no source boundary stalls the consumer). Items of different sources arrive interleaved; at
    most `depth` wait. A thread's exception is raised here."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    lock = threading.Lock()
    todo = iter(range(len(sources)))
    finished = object()

    def work() -> None:
        try:
            while not stop.is_set():
                with lock:
                    i = next(todo, None)
                if i is None:
                    break
                for x in sources[i]():
                    q.put((i, x))
                    if stop.is_set():
                        return
        except BaseException as e:  # handed to the consumer, raised there
            q.put((None, e))
            return
        q.put((None, finished))

    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(workers, len(sources)))]
    for t in threads:
        t.start()
    try:
        running = len(threads)
        while running:
            i, x = q.get()
            if i is None:
                if x is not finished:
                    raise x
                running -= 1
                continue
            yield i, x
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # unblock producers waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                for t in threads:
                    t.join(0.01)
