"""Tests for sam2cli.io.weights: lookup order, settings, downloads from a local server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from sam2cli.errors import SAM2Error
from sam2cli.io import weights as W

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # ~1 MiB, not a multiple of the chunk size


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


class _Slow(http.server.BaseHTTPRequestHandler):
    """Sends half the payload, waits for the test's go-ahead, then the rest."""

    started: threading.Event
    release: threading.Event

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        half = len(PAYLOAD) // 2
        self.wfile.write(PAYLOAD[:half])
        self.wfile.flush()
        self.started.set()
        self.release.wait(10)
        self.wfile.write(PAYLOAD[half:])

    def log_message(self, *args):
        pass


def _serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolated weights dir, config dir, home and cwd, all under tmp_path."""
    wdir = tmp_path / "weights_dir"
    cfg = tmp_path / "config"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SAM2CLI_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("SAM2CLI_WEIGHTS_DIR", str(wdir))
    monkeypatch.delenv("SAM2CLI_DOWNLOAD_BASE", raising=False)
    monkeypatch.chdir(cwd)
    return {"weights": wdir, "config": cfg, "cwd": cwd}


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Local HTTP server over tmp_path/served; SAM2CLI_DOWNLOAD_BASE points at it."""
    served = tmp_path / "served"
    served.mkdir()
    srv, base = _serve(functools.partial(_Quiet, directory=str(served)))
    monkeypatch.setenv("SAM2CLI_DOWNLOAD_BASE", base)
    yield served, base
    srv.shutdown()
    srv.server_close()


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


def test_table_has_all_names():
    table = W.known_weights()
    assert len(table) == 16
    assert table["sam2.1_hiera_large.pt"]["size"] == 898083611
    assert table["sam2.1_hiera_tiny.pt"]["url"].endswith("/092824/sam2.1_hiera_tiny.pt")
    assert table["sam2_hiera_small.pt"]["url"].endswith("/072824/sam2_hiera_small.pt")
    assert table["sam2.1_b.pt"]["url"].startswith("https://github.com/ultralytics/assets/releases/")
    assert all(v["sha256"] is None for v in table.values())


def test_download_base_override(monkeypatch):
    monkeypatch.setenv("SAM2CLI_DOWNLOAD_BASE", "http://127.0.0.1:9/mirror/")
    assert W.known_weights()["sam2.1_l.pt"]["url"] == "http://127.0.0.1:9/mirror/sam2.1_l.pt"


def test_path_resolves_to_itself(env, tmp_path):
    f = tmp_path / "elsewhere" / "my.pt"
    f.parent.mkdir()
    f.write_bytes(b"x")
    assert W.resolve_weights(str(f)) == f
    assert W.resolve_weights(f) == f


def test_name_found_in_weights_dir(env):
    env["weights"].mkdir()
    (env["weights"] / "custom.pt").write_bytes(b"x")
    assert W.resolve_weights("custom.pt") == env["weights"] / "custom.pt"


def test_name_found_in_cwd_weights(env):
    (env["cwd"] / "weights").mkdir()
    (env["cwd"] / "weights" / "custom.pt").write_bytes(b"x")
    assert W.resolve_weights("custom.pt").read_bytes() == b"x"


def test_missing_path_with_directory(env, tmp_path):
    with pytest.raises(SAM2Error) as e:
        W.resolve_weights(str(tmp_path / "nope" / "x.pt"))
    assert _one_line(e).startswith("no such file: ")


def test_known_name_downloads(env, server, capsys):
    served, _ = server
    (served / "sam2.1_b.pt").write_bytes(PAYLOAD)
    path = W.resolve_weights("sam2.1_b.pt")
    assert path == env["weights"] / "sam2.1_b.pt"
    assert path.read_bytes() == PAYLOAD
    assert not (env["weights"] / "sam2.1_b.pt.part").exists()
    assert capsys.readouterr().out == ""  # progress goes to stderr only
    assert W.resolve_weights("sam2.1_b.pt") == path  # now found locally


def test_download_disabled(env, server):
    with pytest.raises(SAM2Error) as e:
        W.resolve_weights("sam2.1_b.pt", download=False)
    assert "downloading is disabled" in _one_line(e)


def test_size_mismatch(env, server):
    served, _ = server
    (served / "sam2.1_hiera_tiny.pt").write_bytes(PAYLOAD)  # table says 156008466 bytes
    with pytest.raises(SAM2Error) as e:
        W.resolve_weights("sam2.1_hiera_tiny.pt")
    msg = _one_line(e)
    assert f"is {len(PAYLOAD)} bytes, expected 156008466" in msg and "try again" in msg
    assert list(env["weights"].iterdir()) == []


def test_sha256_mismatch(env, server, monkeypatch):
    served, base = server
    (served / "sam2.1_s.pt").write_bytes(PAYLOAD)
    good = hashlib.sha256(PAYLOAD).hexdigest()
    table = W.known_weights()
    table["sam2.1_s.pt"]["sha256"] = "0" * 64
    monkeypatch.setattr(W, "known_weights", lambda: table)
    with pytest.raises(SAM2Error) as e:
        W.resolve_weights("sam2.1_s.pt")
    msg = _one_line(e)
    assert good in msg and "corrupt" in msg
    assert list(env["weights"].iterdir()) == []
    table["sam2.1_s.pt"]["sha256"] = good.upper()
    assert W.resolve_weights("sam2.1_s.pt").read_bytes() == PAYLOAD


def test_size_param_mismatch_direct(tmp_path, server):
    served, base = server
    (served / "f.bin").write_bytes(b"abc")
    dest = tmp_path / "out" / "f.bin"
    with pytest.raises(SAM2Error, match="is 3 bytes, expected 4"):
        W.download(base + "f.bin", dest, size=4)
    assert not dest.exists() and not dest.with_suffix(".bin.part").exists()
    assert W.download(base + "f.bin", dest, size=3).read_bytes() == b"abc"


def test_http_404(env, server):
    _, base = server
    with pytest.raises(SAM2Error) as e:
        W.resolve_weights("sam2.1_l.pt")
    msg = _one_line(e)
    assert base + "sam2.1_l.pt" in msg and "404" in msg
    assert str(env["weights"]) in msg
    assert not (env["weights"] / "sam2.1_l.pt.part").exists()


def test_connection_refused(env, monkeypatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("SAM2CLI_DOWNLOAD_BASE", f"http://127.0.0.1:{port}")
    with pytest.raises(SAM2Error) as e:
        W.resolve_weights("sam2.1_b.pt")
    msg = _one_line(e)
    assert msg.startswith(f"could not download sam2.1_b.pt from http://127.0.0.1:{port}/sam2.1_b.pt (")
    assert "machine with internet access" in msg
    assert str(env["weights"] / "sam2.1_b.pt") in msg and "model=/path/to/file" in msg


def test_unknown_name_suggests(env):
    with pytest.raises(SAM2Error) as e:
        W.resolve_weights("sam2.1_bb.pt")
    msg = _one_line(e)
    assert "not a known checkpoint name" in msg
    assert "similar: sam2.1_b.pt" in msg


def test_settings_weights_dir(env, monkeypatch, tmp_path):
    monkeypatch.delenv("SAM2CLI_WEIGHTS_DIR")
    env["config"].mkdir()
    target = tmp_path / "from_settings"
    (env["config"] / "settings.yaml").write_text(f"weights_dir: {target}\n")
    assert W.load_settings() == {"weights_dir": str(target)}
    assert W.weights_dir() == target
    (env["config"] / "settings.yaml").write_text("weights_dir: rel\n")
    assert W.weights_dir() == env["config"] / "rel"


def test_env_beats_settings(env):
    env["config"].mkdir()
    (env["config"] / "settings.yaml").write_text("weights_dir: /should/not/be/used\n")
    assert W.weights_dir() == env["weights"]


def test_settings_absent_and_malformed(env):
    assert W.load_settings() == {}
    env["config"].mkdir()
    (env["config"] / "settings.yaml").write_text("weights_dir: [unclosed\n")
    with pytest.raises(SAM2Error) as e:
        W.load_settings()
    assert "settings.yaml" in _one_line(e)


def test_default_weights_dir_without_settings(env, monkeypatch):
    monkeypatch.delenv("SAM2CLI_WEIGHTS_DIR")
    d = W.weights_dir()
    assert d in (W._REPO_ROOT / "weights", Path(env["cwd"]).parent / "home" / ".cache" / "sam2cli" / "weights")


def test_part_hidden_until_complete(env, monkeypatch):
    handler = type("H", (_Slow,), {"started": threading.Event(), "release": threading.Event()})
    srv, base = _serve(handler)
    monkeypatch.setenv("SAM2CLI_DOWNLOAD_BASE", base)
    result: dict = {}

    def run():
        try:
            result["path"] = W.resolve_weights("sam2.1_t.pt")
        except BaseException as e:  # surfaced by the assertion below
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    try:
        assert handler.started.wait(10)
        dest = env["weights"] / "sam2.1_t.pt"
        part = env["weights"] / "sam2.1_t.pt.part"
        for _ in range(200):
            if part.exists():
                break
            threading.Event().wait(0.02)
        assert part.exists() and not dest.exists()
    finally:
        handler.release.set()
        t.join(15)
        srv.shutdown()
        srv.server_close()
    assert "error" not in result, result.get("error")
    assert result["path"].read_bytes() == PAYLOAD and not part.exists()
