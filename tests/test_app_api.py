"""`sam2 app`'s HTTP side without a browser: who may talk to it (Host, Origin, token, body size),
hundreds of malformed requests that leave the server and the saved session intact, and a session
that survives `kill -9`."""

import json
import os
import re
import signal
import time

import httpx
import pytest

from test_app_common import CLIP, cli_process, scene_images, served


def one_json_line(r: httpx.Response) -> str:
    text = r.text
    assert text.count("\n") <= 1 and r.headers["content-type"].startswith("application/json"), text[:200]
    return r.json()["error"]


@pytest.fixture(scope="module")
def images_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app_api")
    scene_images(tmp / "imgs", 2)
    with served(f"source={tmp / 'imgs'}", f"project={tmp / 'runs'}") as app:
        yield app


def client(app, **kw):
    return httpx.Client(base_url=app.url.split("?")[0], timeout=60, **kw)


def test_loopback_app_checks_host_origin_and_content_type(images_app):
    c = client(images_app)
    port = images_app.url.split(":")[2].split("/")[0]
    assert c.get("/api/info").status_code == 200
    assert c.get("/api/info", headers={"host": f"localhost:{port}"}).status_code == 200
    r = c.get("/api/info", headers={"host": f"evil.example:{port}"})  # DNS rebinding
    assert r.status_code == 403 and "host" in one_json_line(r)
    r = c.post("/api/objects", json={}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "origin" in one_json_line(r)
    r = c.post("/api/objects", json={}, headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403 and "cross-site" in one_json_line(r)
    r = c.post("/api/objects", content=b"{}", headers={"content-type": "text/plain"})  # a form post
    assert r.status_code == 415
    r = c.post("/api/objects", content=b"x" * (2 << 20), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "bytes" in one_json_line(r)
    page = c.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_other_hosts_need_the_token(tmp_path):
    scene_images(tmp_path / "imgs", 1)
    with served(f"source={tmp_path / 'imgs'}", f"project={tmp_path / 'runs'}", "host=0.0.0.0") as app:
        token = re.search(r"token=([\w-]+)", app.url)[1]
        assert len(token) >= 24
        base = app.url.split("?")[0]
        with httpx.Client(base_url=base, timeout=30) as c:
            r = c.get("/api/info")
            assert r.status_code == 403 and "token" in one_json_line(r)
            assert c.get("/api/info", headers={"authorization": "token wrong"}).status_code == 403
            assert c.get("/api/info", headers={"authorization": f"token {token}"}).status_code == 200
            r = c.get(f"/?token={token}")  # the printed URL: a cookie, and the token leaves the address bar
            assert r.status_code == 303 and "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
            assert c.get("/api/info").status_code == 200  # with the cookie
            assert c.post("/api/objects", json={}).status_code == 200


BAD = [  # (method, path, body or raw bytes)
    ("POST", "/api/prompt", b"{not json"), ("POST", "/api/prompt", b"[1, 2]"), ("POST", "/api/prompt", b"\xff\xfe"),
    ("POST", "/api/prompt", {"op": "point"}), ("POST", "/api/prompt", {"op": "point", "frame": 0, "obj_id": 99, "x": 1, "y": 1}),
    ("POST", "/api/prompt", {"op": "point", "frame": 7, "obj_id": 1, "x": 1, "y": 1}),
    ("POST", "/api/prompt", {"op": "point", "frame": -1, "obj_id": 1, "x": 1, "y": 1}),
    ("POST", "/api/prompt", {"op": "point", "frame": "0", "obj_id": 1, "x": 1, "y": 1}),
    ("POST", "/api/prompt", {"op": "point", "frame": 0, "obj_id": 1, "x": 1e9, "y": 1}),
    ("POST", "/api/prompt", {"op": "point", "frame": 0, "obj_id": 1, "x": "NaN", "y": 1}),
    ("POST", "/api/prompt", {"op": "point", "frame": 0, "obj_id": 1, "x": 3, "y": 4, "label": 7}),
    ("POST", "/api/prompt", {"op": "point", "frame": 0, "obj_id": True, "x": 3, "y": 4}),
    ("POST", "/api/prompt", {"op": "box", "frame": 0, "obj_id": 1, "box": [50, 50, 10, 10]}),  # negative size
    ("POST", "/api/prompt", {"op": "box", "frame": 0, "obj_id": 1, "box": [0, 0, -5, -5]}),
    ("POST", "/api/prompt", {"op": "box", "frame": 0, "obj_id": 1, "box": "big"}),
    ("POST", "/api/prompt", {"op": "points", "frame": 0, "obj_id": 1, "points": [[1, 1]] * 5000}),
    ("POST", "/api/prompt", {"op": 3}), ("POST", "/api/prompt", {"op": "explode", "frame": 0, "obj_id": 1}),
    ("POST", "/api/objects", {"name": ""}), ("POST", "/api/objects", {"name": "x" * 1000}),
    ("POST", "/api/objects", {"class": ["a"]}), ("PATCH", "/api/objects/99", {"name": "a"}),
    ("PATCH", "/api/objects/1", {"name": "\u0000"}), ("DELETE", "/api/objects/99", None),
    ("GET", "/api/frame/99", None), ("GET", "/api/frame/-1", None), ("GET", "/api/frame/abc", None),
    ("GET", "/api/frame/99/image", None), ("GET", "/api/nothing", None), ("PUT", "/api/info", {}),
    ("POST", "/api/view", {"frame": 1.5}), ("POST", "/api/everything", {"frame": None}),
    ("POST", "/api/seeds", {"keep": [1]}), ("POST", "/api/seeds", {"keep": "all"}),
    ("POST", "/api/track", {}), ("POST", "/api/export", {"kinds": ["../../etc/passwd"]}),
    ("POST", "/api/export", {"kinds": []}), ("POST", "/api/export", {"kinds": "everything"}),
    ("GET", "/static/../session.json", None), ("GET", "/static/%2e%2e/%2e%2e/README.md", None),
]


def test_hundreds_of_bad_requests_leave_server_and_session_intact(images_app):
    c = client(images_app)
    oid = c.post("/api/objects", json={"name": "cat", "class": "animal"}).json()["obj_id"]
    r = c.post("/api/prompt", json={"op": "point", "frame": 0, "obj_id": oid, "x": 60, "y": 50, "label": 1})
    assert r.status_code == 200, r.text
    before_masks = c.get("/api/frame/0").json()["masks"]
    saved = images_app.app.store.dir / "session.json"
    before = json.loads(saved.read_text())["document"]
    statuses = []
    for _ in range(8):  # 8 x 44 requests
        for method, path, body in BAD:  # obj_id 1 (and /objects/1) stand for the real object
            path = path.replace("/objects/1", f"/objects/{oid}")
            if isinstance(body, dict) and type(body.get("obj_id")) is int and body["obj_id"] == 1:
                body = {**body, "obj_id": oid}
            if isinstance(body, bytes):
                r = c.request(method, path, content=body, headers={"content-type": "application/json"})
            else:
                r = c.request(method, path, json=body) if body is not None else c.request(method, path)
            statuses.append((method, path, r.status_code))
            assert 400 <= r.status_code < 500, (method, path, body, r.status_code, r.text[:200])
            if path.startswith("/api"):
                assert one_json_line(r)
    assert len(statuses) >= 300
    assert c.get("/api/info").status_code == 200  # still answering
    assert c.get("/api/frame/0").json()["masks"] == before_masks
    assert json.loads(saved.read_text())["document"] == before  # the saved session is intact


def test_session_survives_kill_9_and_resumes(tmp_path):
    args = ["app", "model=sam2_demo.pt", f"source={CLIP}", f"project={tmp_path}", "name=mine", "port=0"]

    def start():
        proc = cli_process(*args)
        url = None
        t0 = time.time()
        while url is None and time.time() - t0 < 180:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "sam2 app exited"
            m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            url = m[1] if m else None
        assert url, "no URL printed"
        return proc, httpx.Client(base_url=url, timeout=120)

    proc, c = start()
    try:
        oid = c.post("/api/objects", json={"class": "shape"}).json()["obj_id"]
        c.post("/api/prompt", json={"op": "point", "frame": 3, "obj_id": oid, "x": 233, "y": 57})
        r = c.post("/api/prompt", json={"op": "box", "frame": 3, "obj_id": oid, "box": [188, 14, 278, 101]})
        assert r.status_code == 200
        masks = r.json()["masks"]
        assert masks and masks[0]["obj_id"] == oid
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no last save
        proc.wait()
    assert not list((tmp_path / "mine").rglob(".*.tmp*"))  # no half-written file left behind
    proc, c = start()
    try:
        info = c.get("/api/info").json()
        assert [(o["id"], o["class"], o["frames"]) for o in info["objects"]] == [(oid, "shape", [3])]
        frame = c.get("/api/frame/3").json()
        assert frame["masks"] == masks and frame["prompts"][str(oid)]["box"] == [188, 14, 278, 101]
        assert frame["history"][str(oid)] == [2, 0]  # undo survives too
        undo = c.post("/api/prompt", json={"op": "undo", "frame": 3, "obj_id": oid}).json()
        assert undo["prompts"][str(oid)]["box"] is None and undo["masks"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_bad_sources_are_one_line_usage_errors(tmp_path, capsys):
    from sam2cli.cli.app import main
    assert main(["app", "model=sam2_demo.pt", "source=rtsp://camera/stream", "port=0"]) == 2
    assert main(["app", "model=sam2_demo.pt", f"source={tmp_path / 'missing.mp4'}", "port=0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "live stream" in err[0] and "not found" in err[1]


def test_accepted_connections_send_without_nagle_delay():
    """The page sends many small requests on one kept-alive connection: each answer must go out
    at once (TCP_NODELAY), not after the browser's delayed ACK (~40 ms a request, measured)."""
    import asyncio
    import socket
    from sam2cli.engine.app import bind

    async def accepted_nodelay():
        got = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                got.set_result(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()
        server = await asyncio.get_running_loop().create_server(Probe, sock=bind("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(got, 30)
        finally:
            writer.close()
            server.close()
    assert asyncio.run(accepted_nodelay()) != 0


def test_only_the_worker_thread_runs_the_model(tmp_path, monkeypatch):
    """The model is loaded and run on the app's worker thread alone: a second thread running
    torch ops keeps a second OpenMP team alive, which made every tracked frame ~30% slower on
    2 cores (0.0998 against 0.0765 s; scripts/bench_app.py follow=0: Track 1.23x `sam2 track`
    with the model loaded on the main thread, 1.04x without)."""
    import threading
    import sam2cli.engine.loader as loader
    threads = []
    real = loader.load_model

    def load_model(*a, **kw):
        model, *rest = real(*a, **kw)
        threads.append(threading.current_thread())
        model.register_forward_pre_hook(lambda *_: threads.append(threading.current_thread()))
        for m in model.children():
            m.register_forward_pre_hook(lambda *_: threads.append(threading.current_thread()))
        return (model, *rest)
    monkeypatch.setattr(loader, "load_model", load_model)
    scene_images(tmp_path / "imgs", 1)
    with served(f"source={tmp_path / 'imgs'}", f"project={tmp_path / 'runs'}") as app:
        c = client(app)
        oid = c.post("/api/objects", json={"name": "a"}).json()["obj_id"]
        r = c.post("/api/prompt", json={"op": "point", "frame": 0, "obj_id": oid, "x": 60, "y": 50, "label": 1})
        assert r.status_code == 200 and r.json()["masks"], r.text
        worker = app.app.worker._thread
    assert len(threads) > 2 and set(threads) == {worker}, {t.name for t in threads}


def test_track_gives_the_page_the_trackers_own_frames(tmp_path):
    """While Track runs, the page's follow view is fed the frames the tracker has just decoded
    (FrameServer.offer) instead of the page's reader decoding them again beside the tracker:
    the last frames are served without a read, byte for byte the JPEG of a fresh decoding."""
    from sam2cli.engine.app.frames import FrameServer
    from sam2cli.io.sources import open_frames
    with served(f"source={CLIP}", f"project={tmp_path}") as app:
        frames, reads = app.app.frames, []
        read = frames._read
        frames._read = lambda i: (reads.append(i), read(i))[1]
        c = client(app)
        oid = c.post("/api/objects", json={"name": "a"}).json()["obj_id"]
        r = c.post("/api/prompt", json={"op": "point", "frame": 0, "obj_id": oid, "x": 233, "y": 57})
        assert r.status_code == 200 and c.post("/api/track", json={}).json()["started"]
        t0 = time.time()
        while c.get("/api/info").json()["tracking"] or not c.get("/api/frame/47").json()["masks"]:
            assert time.time() - t0 < 120, "Track did not finish"
            time.sleep(0.2)
        served_47 = c.get("/api/frame/47/image")
    assert served_47.status_code == 200 and served_47.headers["content-type"] == "image/jpeg"
    assert 47 not in reads, reads
    fresh = open_frames(CLIP)
    try:
        assert served_47.content == FrameServer(fresh.__getitem__, len(fresh)).jpeg(47)
    finally:
        fresh.close()
