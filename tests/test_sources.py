"""Tests for sam2cli.io.sources, predict's view (tiny images and a 12-frame 64x48 video made in tmp_path)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.sources import (
    Frame,
    VIDEO_EXTENSIONS,
    URLSource,
    WebcamSource,
    is_video_file,
    list_frame_folder,
    open_frames,
    open_source,
    probe_video,
)

N_FRAMES, W, H = 12, 64, 48


def _gray(value: int, w: int = W, h: int = H) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def _write_image(path: Path, value: int, w: int = 8, h: int = 6) -> Path:
    Image.fromarray(_gray(value, w, h)).save(path)
    return path


def _write_mp4(path: Path, n: int = N_FRAMES) -> Path:
    """Frame i is flat gray 20*i, written directly with PyAV (independent of VideoWriter)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.bit_rate = 2_000_000
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(_gray(20 * i), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_mp4(tmp_path_factory.mktemp("vid") / "clip.mp4")


def _gray_level(frame: Frame) -> int:
    return int(round(float(frame.image.mean()) / 20.0))


def test_single_image(tmp_path: Path) -> None:
    p = _write_image(tmp_path / "a.png", 100)
    src = open_source(str(p))
    frames = list(src)
    assert src.kind == "images" and len(src) == 1
    assert len(frames) == 1
    f = frames[0]
    assert f.image.shape == (6, 8, 3) and f.image.dtype == np.uint8
    assert f.path == str(p) and f.index == 0 and not f.is_video and f.fps is None


def test_video_frames_order_and_fps(video: Path) -> None:
    src = open_source(video)
    assert src.kind == "video" and len(src) == N_FRAMES
    frames = list(src)
    assert [f.index for f in frames] == list(range(N_FRAMES))
    assert [_gray_level(f) for f in frames] == list(range(N_FRAMES))
    assert all(f.is_video and f.path == str(video) and f.fps == pytest.approx(10.0) for f in frames)
    assert frames[0].image.shape == (H, W, 3)
    assert probe_video(video) == (W, H, pytest.approx(10.0), N_FRAMES)


def test_vid_stride_keeps_original_indices(video: Path) -> None:
    src = open_source(str(video), vid_stride=5)
    assert len(src) == 3
    frames = list(src)
    assert [f.index for f in frames] == [0, 5, 10]
    assert [_gray_level(f) for f in frames] == [0, 5, 10]
    with pytest.raises(UsageError):
        open_source(str(video), vid_stride=0)


def test_directory_images_and_videos_sorted(tmp_path: Path, video: Path) -> None:
    _write_image(tmp_path / "img10.png", 10)
    _write_image(tmp_path / "img2.jpg", 20)
    (tmp_path / "notes.md").write_text("ignored")
    (tmp_path / ".hidden.png").write_bytes(b"ignored")
    (tmp_path / "z_clip.mp4").write_bytes(video.read_bytes())
    src = open_source(tmp_path, vid_stride=4)
    assert src.kind == "images" and len(src) == 2 + 3
    frames = list(src)
    assert [Path(f.path).name for f in frames] == ["img2.jpg", "img10.png"] + ["z_clip.mp4"] * 3
    assert [f.index for f in frames] == [0, 0, 0, 4, 8]
    assert [f.is_video for f in frames] == [False, False, True, True, True]
    assert src.failed == []


def test_glob_and_recursive_glob(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _write_image(tmp_path / "b.jpg", 1)
    _write_image(tmp_path / "a.jpg", 2)
    _write_image(tmp_path / "c.png", 3)
    _write_image(tmp_path / "sub" / "d.jpg", 4)
    names = [Path(f.path).name for f in open_source(str(tmp_path / "*.jpg"))]
    assert names == ["a.jpg", "b.jpg"]
    names = [Path(f.path).name for f in open_source(str(tmp_path / "**" / "*.jpg"))]
    assert sorted(names) == ["a.jpg", "b.jpg", "d.jpg"]
    with pytest.raises(SAM2Error, match="no images or videos match"):
        open_source(str(tmp_path / "*.bmp"))


def test_txt_list_relative_paths_and_comments(tmp_path: Path, video: Path) -> None:
    (tmp_path / "imgs").mkdir()
    _write_image(tmp_path / "imgs" / "x.png", 5)
    _write_image(tmp_path / "y.png", 6)
    lst = tmp_path / "list.txt"
    lst.write_text(f"# my inputs\n\nimgs/x.png\n  {tmp_path / 'y.png'}  \n{video}\n# done\n")
    src = open_source(lst, vid_stride=6)
    frames = list(src)
    assert [Path(f.path).name for f in frames] == ["x.png", "y.png", "clip.mp4", "clip.mp4"]
    assert [f.index for f in frames] == [0, 0, 0, 6]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(SAM2Error, match="no paths listed"):
        open_source(empty)


def test_stdin_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _write_image(tmp_path / "a.png", 1)
    b = _write_image(tmp_path / "b.png", 2)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{b}\n\n{a}\n"))
    assert [f.path for f in open_source("-")] == [str(b), str(a)]


def test_corrupt_and_missing_entries_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_image(tmp_path / "1.png", 1)
    (tmp_path / "2.jpg").write_bytes(b"this is not a jpeg")
    (tmp_path / "3.mp4").write_bytes(b"\x00not a video either" * 10)
    _write_image(tmp_path / "4.png", 4)
    with caplog.at_level(logging.WARNING, logger="sam2cli"):
        src = open_source(tmp_path)
        names = [Path(f.path).name for f in src]
    assert names == ["1.png", "4.png"]
    assert [Path(p).name for p, _ in src.failed] == ["2.jpg", "3.mp4"]
    assert all(reason for _, reason in src.failed)
    assert "2.jpg" in caplog.text and "3.mp4" in caplog.text

    lst = tmp_path / "l.txt"
    lst.write_text("1.png\nmissing.png\n")
    src = open_source(lst)
    assert [Path(f.path).name for f in src] == ["1.png"]
    assert [(Path(p).name, r) for p, r in src.failed] == [("missing.png", "file not found")]


def test_single_corrupt_file_raises(tmp_path: Path) -> None:
    bad_vid = tmp_path / "x.mp4"
    bad_vid.write_bytes(b"garbage" * 20)
    with pytest.raises(SAM2Error, match=r"cannot read video .*x\.mp4: ") as e:
        open_source(bad_vid)
    assert "\n" not in str(e.value)
    bad_img = tmp_path / "y.jpg"
    bad_img.write_bytes(b"garbage")
    with pytest.raises(SAM2Error, match="y.jpg"):
        list(open_source(bad_img))


def test_missing_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(SAM2Error, match="source not found: .*nope.jpg"):
        open_source(tmp_path / "nope.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SAM2Error, match="no images or videos found"):
        open_source(tmp_path / "empty")
    with pytest.raises(UsageError):
        open_source(3.5)  # type: ignore[arg-type]


def test_webcam_and_url_parsing() -> None:
    cam = open_source("0")
    assert isinstance(cam, WebcamSource) and cam.index == 0 and cam.kind == "stream"
    assert isinstance(open_source(2), WebcamSource)
    for url in ("rtsp://host/live", "rtmp://host/app", "http://host/v.m3u8", "HTTPS://host/x"):
        src = open_source(url, vid_stride=2)
        assert isinstance(src, URLSource) and src.kind == "stream" and src.vid_stride == 2
        assert src.length is None
        with pytest.raises(TypeError):
            len(src)
        assert bool(src)


def test_frame_folder_numeric_order(tmp_path: Path) -> None:
    for i, name in enumerate(["10.jpg", "0.jpg", "2.jpg"]):
        _write_image(tmp_path / name, 50 * (i + 1))
    assert [p.name for p in list_frame_folder(tmp_path)] == ["0.jpg", "2.jpg", "10.jpg"]
    frames = list(open_frames(tmp_path).frames())
    assert [Path(f.path).name for f in frames] == ["0.jpg", "2.jpg", "10.jpg"]
    assert [f.index for f in frames] == [0, 1, 2] and all(f.is_video for f in frames)

    other = tmp_path / "named"
    other.mkdir()
    for name in ["f10.png", "f2.png", "f1.png"]:
        _write_image(other / name, 9)
    assert [p.name for p in list_frame_folder(other)] == ["f1.png", "f2.png", "f10.png"]
    with pytest.raises(SAM2Error):
        list_frame_folder(tmp_path / "missing")


def test_extension_helpers() -> None:
    assert is_video_file("a/b.MP4") and is_video_file("c.webm") and not is_video_file("d.jpg")
    assert set(VIDEO_EXTENSIONS) >= {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}


class _FakeCamera:
    """cv2.VideoCapture stand-in: 7 BGR frames whose blue channel is the frame number."""

    def __init__(self, index: int, opened: bool = True) -> None:
        self.opened, self.n, self.released = opened, 0, False

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.opened

    def get(self, prop: int) -> float:
        return 30.0

    def read(self):
        if self.n == 7:
            return False, None
        bgr = np.zeros((4, 5, 3), np.uint8)
        bgr[..., 0] = self.n
        self.n += 1
        return True, bgr

    def release(self) -> None:
        self.released = True


def test_webcam_frames_are_rgb_strided_and_the_same_for_predict_and_track(monkeypatch) -> None:
    from sam2cli.io import streams
    monkeypatch.setattr(streams.cv2, "VideoCapture", _FakeCamera)
    frames = list(open_source(0, vid_stride=3))
    assert [f.index for f in frames] == [0, 3, 6] and frames[0].fps == 30.0 and frames[0].is_video
    assert [int(f.image[0, 0, 2]) for f in frames] == [0, 3, 6]  # blue is last in RGB
    with open_frames("0", vid_stride=3) as reader:
        tracked = [img for _, img in reader]
    assert all(np.array_equal(a.image, b) for a, b in zip(frames, tracked)) and len(tracked) == 3

    monkeypatch.setattr(streams.cv2, "VideoCapture", lambda i: _FakeCamera(i, opened=False))
    with pytest.raises(SAM2Error, match="cannot open webcam 0: check the camera index"):
        list(open_source(0))


def test_max_frames_keeps_the_first_frames_of_each_video(tmp_path: Path, video: Path, monkeypatch) -> None:
    """After vid_stride, per video (still images are not counted), and on a stream too."""
    src = open_source(str(video), vid_stride=5, max_frames=2)
    assert len(src) == 2 and [f.index for f in src] == [0, 5]
    _write_image(tmp_path / "a.png", 10)
    (tmp_path / "b.mp4").write_bytes(video.read_bytes())
    (tmp_path / "c.mp4").write_bytes(video.read_bytes())
    src = open_source(tmp_path, max_frames=1)
    assert len(src) == 3 and [(Path(f.path).name, f.index) for f in src] == [("a.png", 0), ("b.mp4", 0),
                                                                              ("c.mp4", 0)]
    from sam2cli.io import streams
    monkeypatch.setattr(streams.cv2, "VideoCapture", _FakeCamera)
    assert [f.index for f in open_source(0, vid_stride=3, max_frames=2)] == [0, 3]
    with pytest.raises(UsageError, match="max_frames must be an integer >= 1"):
        open_source(str(video), max_frames=0)


# ---------------------------------------------------------------------------- one layer, two views


def test_predict_and_track_views_share_one_frame_index_convention(video: Path) -> None:
    """Position i of track's reader is original frame i * vid_stride, the Frame.index predict yields."""
    streamed = list(open_source(video, vid_stride=3))
    with open_frames(video, vid_stride=3) as reader:
        positions = [(i, img) for i, img in reader]
        records = list(reader.frames())
    assert [f.index for f in streamed] == [i * 3 for i, _ in positions] == [0, 3, 6, 9]
    assert all(np.array_equal(f.image, img) for f, (_, img) in zip(streamed, positions))
    assert [(f.index, f.path, f.fps) for f in records] == [(f.index, f.path, f.fps) for f in streamed]
    assert reader.fps == pytest.approx(10.0 / 3) and reader.source_fps == pytest.approx(10.0)


def test_streams_go_through_the_one_decoder(video: Path) -> None:
    """Predict's stream source and track's stream reader both read a URL with decode_av."""
    from sam2cli.io.sources import StreamReader, StreamSource
    frames = list(StreamSource(str(video), vid_stride=2))  # PyAV reads a local file like a stream
    reader = StreamReader(str(video), vid_stride=2)
    tracked = [(i, img) for i, img in reader]
    reader.close()
    assert [f.index for f in frames] == [2 * i for i, _ in tracked] == list(range(0, N_FRAMES, 2))
    assert [_gray_level(f) for f in frames] == list(range(0, N_FRAMES, 2))
    assert all(np.array_equal(f.image, img) for f, (_, img) in zip(frames, tracked))
    assert frames[0].fps == pytest.approx(10.0) and reader.fps == pytest.approx(5.0)


def test_one_resolver_for_both_views(tmp_path: Path, video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sam2cli.io.sources import resolve
    frames = tmp_path / "shot"
    frames.mkdir()
    for i in (2, 0, 1):
        _write_image(frames / f"{i}.jpg", 10 * i)
    (frames / "clip.mp4").write_bytes(video.read_bytes())
    assert [p.name for p in resolve(frames, video=True).paths] == ["0.jpg", "1.jpg", "2.jpg"]
    assert [p.name for p in resolve(frames, video=False).paths] == ["0.jpg", "1.jpg", "2.jpg", "clip.mp4"]
    assert resolve(str(video), video=True).kind == resolve(video, video=False).kind == "video"
    assert resolve("rtsp://cam/live", video=True).stream == "rtsp://cam/live"
    assert resolve(np.int64(1), video=True).stream == resolve("1", video=False).stream == 1
    with pytest.raises(SAM2Error, match="no images match"):
        resolve(str(frames / "*.mp4"), video=True)
    # stdin and lists: one parser, relative entries against the working folder, in both views
    monkeypatch.chdir(frames)
    monkeypatch.setattr("sys.stdin", io.StringIO("# picked\n2.jpg\n\n0.jpg\n"))
    reader = open_frames("-")
    assert reader.name == "shot" and [reader.path_of(i) for i in range(2)] == [str(frames / "2.jpg"),
                                                                                str(frames / "0.jpg")]
    assert [f.path for f in open_source(["2.jpg", "0.jpg"])] == [reader.path_of(0), reader.path_of(1)]
    with pytest.raises(SAM2Error, match=r"source not found: .*nope\.jpg \(listed in the source list\)"):
        open_frames(["0.jpg", "nope.jpg"])
    with pytest.raises(UsageError, match="is not an image"):
        open_frames(["0.jpg", "clip.mp4"])


def test_images_under_a_dataset_folder(tmp_path: Path) -> None:
    from sam2cli.io.sources import images_under
    for rel in ("b/2.jpg", "b/10.png", "a.jpg", ".cache/x.jpg", "c/.hidden.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        _write_image(tmp_path / rel, 1)
    (tmp_path / "notes.txt").write_text("not an image")
    assert [r.as_posix() for r in images_under(tmp_path)] == ["a.jpg", "b/10.png", "b/2.jpg"]
