"""The one inference thread of `sam2 app`, and the event hub that streams to the pages.

Every job that touches the model or the document runs on the worker, one at a time, in the order
submitted; the event loop only awaits their futures, so it never blocks on inference. Three
kinds of job:

* `submit(fn)`: a request (a click, an object change, an export); its future gives the result.
* `submit(fn, interrupts=True)`: a change of prompts; it cancels a running (or queued) Track, which
  stops after its current frame keeping the frames done. Decision: a click during propagation
  is about the current state, so it wins; the user presses Track again to propagate it.
* `idle(key, fn)`: work worth doing only when nothing waits (embedding the frame being viewed
  and the next one); a newer job of the same key replaces an older one not yet started.
"""

import asyncio
import concurrent.futures
import logging
import queue
import threading
from typing import Any, Callable, Dict, List, Optional, Set

LOGGER = logging.getLogger("sam2cli")
COALESCE_S = 0.2  # "tracked" events sent to a page at most this often, in one chunk each
POLL_S = 0.02     # how often a waiting chunk looks for an event that must not wait


class Worker:
    def __init__(self):
        self._jobs: "queue.Queue" = queue.Queue()
        self._idle: Dict[str, Callable[[], Any]] = {}
        self._lock = threading.Lock()
        self._cancels = 0                   # bumped by every interrupting job
        self.tracking = False
        self._thread = threading.Thread(target=self._run, name="sam2-app-worker", daemon=True)
        self._stop = False

    def start(self) -> "Worker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def submit(self, fn: Callable[[], Any], *, interrupts: bool = False) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        if interrupts:
            with self._lock:
                self._cancels += 1
        self._jobs.put((fn, fut))
        return fut

    def submit_tracking(self, fn: Callable[[Callable[[], bool]], Any]) -> concurrent.futures.Future:
        """A long job given `cancelled()`: true once an interrupting job (or cancel()) came after it."""
        with self._lock:
            mine = self._cancels

        def cancelled() -> bool:
            return self._cancels != mine

        def run():
            self.tracking = True
            try:
                return fn(cancelled)
            finally:
                self.tracking = False
        return self.submit(run)

    def cancel(self) -> None:
        with self._lock:
            self._cancels += 1

    def idle(self, key: str, fn: Callable[[], Any]) -> None:
        with self._lock:
            self._idle.pop(key, None)  # the oldest request runs first
            self._idle[key] = fn
        self._jobs.put(("idle", None))  # wake the thread

    def _run(self) -> None:
        while not self._stop:
            item = self._jobs.get()
            if item is None:
                break
            fn, fut = item
            if fn == "idle":
                if self._jobs.empty():
                    self._run_idle()
                continue
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as e:  # the future carries it to the request; the thread goes on
                fut.set_exception(e)

    def _run_idle(self) -> None:
        while self._jobs.empty():
            with self._lock:
                if not self._idle:
                    return
                key = next(iter(self._idle))
                fn = self._idle.pop(key)
            try:
                fn()
            except Exception as e:  # prefetching is best effort
                LOGGER.warning(f"sam2 app: background work failed: {e}")


class Hub:
    """Events (dicts) from the worker thread to every page listening on /api/events."""

    def __init__(self, maxsize: int = 1000):
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.queues: Set[asyncio.Queue] = set()
        self.maxsize = maxsize

    def subscribe(self) -> asyncio.Queue:
        self.loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue(self.maxsize)
        self.queues.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.queues.discard(q)

    def publish(self, event: Dict[str, Any]) -> None:
        """Thread-safe; a page too slow to keep up gets its backlog replaced by one "overflow"
        event (it then reloads what it shows)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return

        def put():
            for q in list(self.queues):
                try:
                    q.put_nowait(event)
                except asyncio.QueueFull:
                    while not q.empty():
                        q.get_nowait()
                    q.put_nowait({"type": "overflow"})
        try:
            loop.call_soon_threadsafe(put)
        except RuntimeError:  # the loop closed meanwhile
            pass


async def coalesce(q: asyncio.Queue, first: Dict[str, Any], last_sent: float,
                   interval: float = COALESCE_S) -> List[Dict[str, Any]]:
    """`first` and the events that follow it within `interval` of the last chunk sent (event-loop
    time `last_sent`), to go to the page as one chunk: each chunk costs the browser a round of
    IPC and wake-ups (~5 ms of CPU on 2 cores), an event in it almost nothing. Only "tracked"
    events wait; any other event (track_done, overflow, ...) goes within POLL_S with those before
    it, and after a quiet spell the first one goes at once. The queue is polled rather than
    awaited with a timeout, so no get is ever cancelled half-way (asyncio does not document
    that a cancelled get keeps its item: cpython issue 92824)."""
    batch = [first]
    loop = asyncio.get_running_loop()
    while True:
        while not q.empty() and batch[-1].get("type") == "tracked":
            batch.append(q.get_nowait())
        wait = last_sent + interval - loop.time()
        if batch[-1].get("type") != "tracked" or wait <= 0:
            return batch
        await asyncio.sleep(min(wait, POLL_S))
