"""`sam2 app`: a local web app to annotate a video or a folder of images with SAM 2.

    sam2 app model=sam2.1_t.pt source=video.mp4          # prints http://127.0.0.1:8765/
    sam2 app model=sam2_demo.pt source=photos/ open=True  # images mode, opens the browser

A video file or a frame folder (numbered frames) is tracked (video mode); a folder, glob or list
of other images, or one image, is segmented image by image (images mode). The session lives in
the run folder (runs/app, ...): reopening the same source resumes it.

Layout: `launch` (this file: source, run folder, model, socket), `server` (routes), `worker`
(the inference thread and the event stream), `security` (host, origin, token), `document`
(objects, prompts, undo), `store` (the files), `images` / `video` (the engines), `exports`,
`frames` (JPEG for the page) and `static/` (the page: HTML, CSS and plain JS modules).
"""

import logging
import socket
import threading
import webbrowser
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from sam2cli.errors import SAM2Error, UsageError

LOGGER = logging.getLogger("sam2cli")
DEFAULT_PORT_TRIES = 20  # port= taken: the next ones are tried (an explicit port=0 picks any free one)


def open_media(source: Any, vid_stride: int):
    """("video", reader, what to open it with) or ("images", [paths], None) for a source (see the
    module docstring)."""
    from sam2cli.io.image import is_image_file
    from sam2cli.io.sources import is_video_file, open_frames, resolve
    if source is None:
        raise UsageError("source= is required, e.g. sam2 app model=sam2.1_t.pt source=video.mp4")
    r = resolve(source, video=False)
    if r.kind == "stream":
        raise UsageError(f"sam2 app reads a video file, a frame folder or images, not a live stream ({source})")
    if r.kind == "video":
        return "video", open_frames(source, vid_stride), source
    videos = [p for p in r.paths if is_video_file(p)]
    images = [p for p in r.paths if is_image_file(p)]
    if videos:
        raise UsageError(f"{source} holds videos ({videos[0].name}, ...): give sam2 app one video, or images")
    if not images:
        raise SAM2Error(f"no images found in {source}")
    if len(images) > 1 and all(p.stem.isdigit() for p in images):  # numbered frames: a video
        arg = source if Path(str(source)).is_dir() else [str(p) for p in images]
        return "video", open_frames(arg, vid_stride), arg
    return "images", images, None


def _random_model(cfg):
    import torch
    from sam2cli.model.sam2 import SAM2Model
    LOGGER.warning(f"model={cfg.name} is a config name: random weights, for timing the app only")
    torch.manual_seed(0)
    return SAM2Model(cfg)


def build(opts, console=None):
    """Everything but the socket: (AppServer, description dict)."""
    from sam2cli.engine.loader import load_model
    from sam2cli.io.image import load_image
    from .document import Document
    from .frames import FrameServer
    from .images import ImagesEngine
    from .server import AppServer
    from .store import Store, open_run
    from .video import VideoEngine
    from .worker import Worker

    mode, media, frames_arg = open_media(opts.source, opts.vid_stride)
    src = opts.source
    key = str(Path(str(src)).expanduser().resolve()) if Path(str(src)).expanduser().exists() else str(src)
    if mode == "video":
        identity = {"source": key, "mode": mode, "num_frames": len(media), "size": [media.height, media.width],
                    "vid_stride": opts.vid_stride}
    else:
        identity = {"source": key, "mode": mode, "num_frames": len(media), "files": [p.name for p in media[:50]]}
    run_dir, resumed = open_run(opts.run_dir.project, opts.run_dir.name, opts.run_dir.exist_ok, identity)
    store = Store(run_dir)
    saved = store.load() if resumed else None
    doc = Document.from_json(saved["document"], len(media)) if saved else Document(len(media))
    net = opts.net
    kw = dict(half=net.half, everything=opts.everything)

    def make_engine():
        model = load_model(net.model, net.device, net.imgsz, from_config=_random_model)[0]
        if mode == "video":
            return VideoEngine(model, doc, store, media, tracker=opts.tracker, fill_hole_area=opts.fill_hole_area, **kw)
        return ImagesEngine(model, doc, store, media, **kw)

    # The worker is the one thread that ever runs the model, its loading included. PyTorch's
    # OpenMP keeps a team of threads per calling thread; with a second team alive (the loading
    # thread's), libgomp counts more threads than cores and stops spinning at its barriers, and
    # the worker's every op then sleeps and wakes on futexes. On 2 cores, with the model loaded
    # on the main thread: 0.0998 against 0.0765 s per tracked frame, 14 against 5 ms of it in
    # the kernel (README, Web app).
    worker = Worker().start()
    try:
        engine = worker.submit(make_engine).result()
        if mode == "video":
            from sam2cli.io.sources import open_frames
            page_reader = open_frames(frames_arg, opts.vid_stride)  # the page's own: the worker owns `media`
            frames = FrameServer(page_reader.__getitem__, len(media), page_reader.close)
        else:
            frames = FrameServer(lambda i: load_image(media[i]), len(media))
        track_args = {"source": key, "vid_stride": opts.vid_stride, "tracker": opts.tracker,
                      "fill_hole_area": opts.fill_hole_area}
        app = AppServer(engine, store, identity, frames, track_args, worker)
    except BaseException:
        worker.stop()
        raise
    app.save()
    return app, {"mode": mode, "frames": len(media), "run_dir": run_dir, "resumed": resumed,
                 "objects": len(doc.objects)}


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, else on one of the next ports (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    tries = [0] if port == 0 else range(port, port + DEFAULT_PORT_TRIES)
    last: Optional[OSError] = None
    for p in tries:
        # proto=IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on accepted sockets
        # whose proto says TCP, and without it every request after the first on a kept-alive
        # connection waited ~40 ms (Nagle's algorithm against the browser's delayed ACK)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, p))
        except OSError as e:
            sock.close()
            last = e
            continue
        sock.listen(128)
        return sock
    raise SAM2Error(f"cannot listen on {host}:{port} ({getattr(last, 'strerror', last)}); pass another port=, "
                    "or port=0 for any free one")


class Running:
    """A served app: `url`, `stop()`. `serve(opts)` starts it in a thread (tests, scripts)."""

    def __init__(self, app, server, sock, url: str, thread: Optional[threading.Thread] = None):
        self.app, self.server, self.sock, self.url, self.thread = app, server, sock, url, thread

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)
        self.app.close()


def prepare(opts, console=None) -> Tuple[Any, Any, socket.socket, str, Dict[str, Any]]:
    import uvicorn
    from .security import Guard, is_loopback, new_token
    host = str(opts.host or "127.0.0.1")
    token = str(opts.token) if opts.token not in (None, "") else (None if is_loopback(host) else new_token())
    sock = bind(host, int(opts.port))
    try:
        app, desc = build(opts, console)
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    guarded = Guard(app.asgi, host=host, port=port, token=token)
    config = uvicorn.Config(guarded, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=2)
    return app, uvicorn.Server(config), sock, url, desc


def serve(opts) -> Running:
    """Start the app in a background thread; returns once it answers."""
    import time
    app, server, sock, url, _ = prepare(opts)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="sam2-app-http")
    thread.start()
    t0 = time.time()
    while not server.started and time.time() - t0 < 30:
        time.sleep(0.02)
    return Running(app, server, sock, url, thread)


def run_app(opts, console) -> int:
    """`sam2 app`: serve until Ctrl-C."""
    app, server, sock, url, desc = prepare(opts, console)
    what = f"{desc['frames']} {'frame' if desc['mode'] == 'video' else 'image'}(s)"
    again = f", resumed ({desc['objects']} object(s))" if desc["resumed"] else ""
    console.print(f"sam2 app: {desc['mode']} mode, {what}, session in {desc['run_dir']}{again}", highlight=False)
    console.print(f"open {url}  (Ctrl-C to stop)", highlight=False, soft_wrap=True)
    if opts.open:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    finally:
        app.close()
    console.print(f"stopped; the session is saved in {desc['run_dir']}", highlight=False)
    return 0
