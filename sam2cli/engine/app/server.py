"""The HTTP side of `sam2 app`: Starlette routes over the worker, the document and the store.

Reads (a frame's masks and prompts, the object list) run in a thread under the document lock;
changes run on the worker (the one thread that holds the model) and hold the lock while they
change the document. Masks go to the page as COCO RLE, the format the store keeps (no
re-encoding; ~10x smaller than a PNG of the same mask), frames as JPEG. Every error is one JSON
line, {"error": "..."}, with a 4xx status (5xx only for a bug), and the server keeps running.
"""

import asyncio
import json
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Dict

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.overlay import object_color
from .exports import KINDS, Exporter, check_kinds
from .security import MAX_BODY
from .worker import Hub, Worker, coalesce

LOGGER = logging.getLogger("sam2cli")
STATIC = Path(__file__).parent / "static"


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _hex(oid: int) -> str:
    return "#%02x%02x%02x" % object_color(oid)


class AppServer:
    """The app's state and routes: `self.asgi` is the Starlette application."""

    def __init__(self, engine, store, identity: Dict[str, Any], frames, track_args: Dict[str, Any],
                 worker: Worker):
        """`worker`: the started thread that built `engine` (the one that runs the model)."""
        self.engine, self.store, self.identity, self.frames = engine, store, identity, frames
        self.doc = engine.doc
        self.lock = threading.RLock()
        self.worker = worker
        self.hub = Hub()
        self.exporter = Exporter(engine, store.dir, track_args)
        api = [("GET", "/api/info", self.info), ("GET", "/api/frame/{frame:int}", self.frame),
               ("POST", "/api/prompt", self.prompt), ("POST", "/api/objects", self.add_object),
               ("PATCH", "/api/objects/{obj_id:int}", self.update_object),
               ("DELETE", "/api/objects/{obj_id:int}", self.delete_object), ("POST", "/api/view", self.view),
               ("POST", "/api/everything", self.everything), ("POST", "/api/seeds", self.seeds),
               ("POST", "/api/track", self.track), ("POST", "/api/cancel", self.cancel),
               ("POST", "/api/export", self.export)]
        routes = [Route(path, _json_route(fn), methods=[m]) for m, path, fn in api]
        routes += [Route("/api/frame/{frame:int}/image", self.frame_image, methods=["GET"]),
                   Route("/api/events", self.events, methods=["GET"]),
                   Route("/", self.index, methods=["GET"]), Mount("/static", StaticFiles(directory=STATIC))]
        self.asgi = Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _bug})

    def close(self) -> None:
        self.worker.stop()
        self.frames.close()

    # ------------------------------------------------------------------ helpers
    def save(self) -> None:
        self.store.save(self.identity, self.doc.to_json())

    async def on_worker(self, fn: Callable[[], Any], interrupts: bool = False) -> Any:
        return await asyncio.wrap_future(self.worker.submit(fn, interrupts=interrupts))

    async def read(self, fn: Callable[[], Any]) -> Any:
        def locked():
            with self.lock:
                return fn()
        return await run_in_threadpool(locked)

    def objects(self):
        d = self.doc
        return [{**o, "color": _hex(oid), "frames": d.frames_of(oid), "dirty": oid in d.dirty}
                for oid, o in sorted(d.objects.items())]

    def info_payload(self) -> Dict[str, Any]:
        e, d = self.engine, self.doc
        out = {"mode": e.mode, "name": e.name, "num_frames": e.num_frames, "objects": self.objects(),
               "classes": d.classes(), "prompted": d.prompted_frames(), "run_dir": self.store.dir.name,
               "exports": list(KINDS[e.mode]), "tracking": self.worker.tracking}
        if e.mode == "video":
            h, w = e.hw(0)
            out.update(width=w, height=h, fps=e.fps, backward=d.backward, to_track=e.plan())
        return out

    def frame_payload(self, frame: int) -> Dict[str, Any]:
        d = self.doc
        prompts = {str(oid): {"points": s["points"], "labels": s["labels"], "box": s["box"],
                              "mask": s["mask"] is not None}
                   for oid, s in sorted(d.prompts.get(frame, {}).items())}
        history = {str(oid): d.history_sizes(frame, oid) for oid in d.objects}
        return {"frame": frame, "hw": list(self.engine.hw(frame)), "masks": self.engine.visible(frame),
                "prompts": prompts, "history": history}

    def check_frame(self, value: Any) -> int:
        return self.doc.frame(value)

    # ------------------------------------------------------------------ routes
    async def index(self, request: Request):
        if "token" in request.query_params:  # the cookie is set on this response: drop the token from the URL
            return RedirectResponse("/", status_code=303)
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def info(self, request: Request, body):
        return await self.read(self.info_payload)

    async def frame(self, request: Request, body):
        return await self.read(lambda: self.frame_payload(self.check_frame(request.path_params["frame"])))

    async def frame_image(self, request: Request):
        try:
            frame = self.check_frame(request.path_params["frame"])
        except UsageError as e:
            return JSONResponse({"error": str(e)}, 404)
        data = await run_in_threadpool(self.frames.jpeg, frame)
        return Response(data, media_type="image/jpeg", headers={"cache-control": "private, max-age=86400"})

    async def prompt(self, request: Request, body):
        op = field(body, "op", str)

        def job():
            with self.lock:
                d = self.doc
                frame, oid = d.frame(body.get("frame")), d.obj(body.get("obj_id"))
                hw = self.engine.hw(frame)
                if op == "point":
                    d.add_point(frame, oid, body.get("x"), body.get("y"), body.get("label", 1), hw)
                    changed = True
                elif op == "box":
                    d.set_box(frame, oid, body.get("box"), hw)
                    changed = True
                elif op == "clear":
                    changed = d.clear(frame, oid)
                elif op in ("undo", "redo"):
                    changed = d.step_history(frame, oid, redo=op == "redo")
                else:
                    raise UsageError(f"unknown op {op[:40]!r}; use point, box, clear, undo or redo")
                if changed:
                    self.engine.prompt_changed(frame, oid)
                    self.save()
                return {"changed": changed, **self.frame_payload(frame), "objects": self.objects(),
                        "prompted": d.prompted_frames()}
        return await self.on_worker(job, interrupts=True)

    async def add_object(self, request: Request, body):
        def job():
            with self.lock:
                oid = self.doc.add_object(body.get("name"), body.get("class"))
                self.save()
                return {"obj_id": oid, "objects": self.objects(), "classes": self.doc.classes()}
        return await self.on_worker(job)

    async def update_object(self, request: Request, body):
        def job():
            with self.lock:
                self.doc.update_object(self.doc.obj(request.path_params["obj_id"]), body.get("name"), body.get("class"))
                self.save()
                return {"objects": self.objects(), "classes": self.doc.classes()}
        return await self.on_worker(job)

    async def delete_object(self, request: Request, body):
        def job():
            with self.lock:
                self.engine.delete_object(self.doc.obj(request.path_params["obj_id"]))
                self.save()
                return {"objects": self.objects(), "classes": self.doc.classes(), "prompted": self.doc.prompted_frames()}
        return await self.on_worker(job, interrupts=True)

    async def view(self, request: Request, body):
        frame = self.check_frame(body.get("frame"))
        self.worker.idle("embed", lambda: self.engine.prefetch(frame))  # the viewed frame first
        if frame + 1 < self.engine.num_frames:
            self.worker.idle("embed-next", lambda: self.engine.prefetch(frame + 1))
        return {"frame": frame}

    async def everything(self, request: Request, body):
        frame = self.check_frame(body.get("frame"))
        seeds = await self.on_worker(lambda: self.engine.everything(frame))
        return {"frame": frame, "seeds": [{"id": s["id"], "score": round(s["score"], 4), "rle": s["rle"]}
                                          for s in seeds["items"]]}

    async def seeds(self, request: Request, body):
        keep = body.get("keep", [])

        def job():
            with self.lock:
                frame = (self.engine.seeds or {}).get("frame")
                made = self.engine.keep_seeds(keep, body.get("class")) if keep else []
                self.engine.seeds = None
                self.save()
                out = {"kept": made, "objects": self.objects(), "prompted": self.doc.prompted_frames()}
                return {**out, **self.frame_payload(frame)} if frame is not None else out
        return await self.on_worker(job, interrupts=True)

    async def track(self, request: Request, body):
        if self.engine.mode != "video":
            raise UsageError("Track is for videos; in images mode every image is segmented on its own")
        backward = body.get("backward")
        if backward is not None and not isinstance(backward, bool):
            raise UsageError("backward must be true or false")
        if self.worker.tracking:
            raise ApiError(409, "tracking is running; cancel it first")

        def prepare():
            with self.lock:
                if backward is not None:
                    self.engine.set_backward(backward)
                    self.save()
                return self.engine.plan()
        plan = await self.on_worker(prepare)
        if plan["objects"]:
            self.worker.submit_tracking(self._track_job)
        return {"started": bool(plan["objects"]), **plan}

    def _track_job(self, cancelled):
        self.hub.publish({"type": "track_start", **self.engine.plan()})
        try:
            out = self.engine.track(cancelled, self.hub.publish, self.lock, decoded=self.frames.offer)
        except Exception as e:
            LOGGER.exception("sam2 app: tracking failed")
            self.hub.publish({"type": "track_done", "error": str(e), "cancelled": True})
            raise
        with self.lock:
            self.save()
            self.hub.publish({"type": "track_done", **out, "objects_state": self.objects()})
        return out

    async def cancel(self, request: Request, body):
        self.worker.cancel()
        return {"cancelling": self.worker.tracking}

    async def export(self, request: Request, body):
        kinds = check_kinds(body.get("kinds", "all"), self.engine.mode)

        def job():
            with self.lock:
                return {"written": self.exporter.run(kinds), "run_dir": str(self.store.dir)}
        return await self.on_worker(job)

    async def events(self, request: Request):
        q = self.hub.subscribe()

        async def stream():
            last = 0.0
            try:
                yield "retry: 1000\n\n"
                while True:
                    try:
                        ev = await asyncio.wait_for(q.get(), 10)
                    except asyncio.TimeoutError:
                        if await request.is_disconnected():
                            break
                        yield ": ping\n\n"
                        continue
                    batch = await coalesce(q, ev, last)
                    last = asyncio.get_running_loop().time()
                    yield "".join(f"data: {json.dumps(e)}\n\n" for e in batch)
            finally:
                self.hub.unsubscribe(q)
        return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-store"})


# ---------------------------------------------------------------------- JSON plumbing
def field(body: Dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise UsageError(f"{key} must be a {kind.__name__}")
    return value


async def read_json(request: Request) -> Dict[str, Any]:
    if request.method in ("GET", "HEAD", "DELETE"):
        return {}
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY:
            raise ApiError(413, f"the request body is over {MAX_BODY} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _json_route(fn):
    async def endpoint(request: Request):
        try:
            return JSONResponse(await fn(request, await read_json(request)))
        except ApiError as e:
            return JSONResponse({"error": str(e)}, e.status)
        except UsageError as e:
            return JSONResponse({"error": str(e)}, 400)
        except SAM2Error as e:
            return JSONResponse({"error": str(e)}, 422)
    return endpoint


async def _http_error(request: Request, exc: HTTPException):
    return JSONResponse({"error": exc.detail or "error"}, exc.status_code)


async def _bug(request: Request, exc: Exception):
    LOGGER.error(f"sam2 app: {type(exc).__name__}: {exc}")
    return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server's log"}, 500)
