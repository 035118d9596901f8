"""sam2cli.io.sources, track's view: FrameReader over frame folders, image sequences, video files, streams."""

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from sam2cli.errors import SAM2Error, UsageError
from sam2cli.io.sources import (
    ImageSequenceReader,
    StreamReader,
    VideoReader,
    open_frames,
)

N, W, H, STEP = 40, 64, 48, 6


def write_video(path: Path, n: int = N, gop: int = 10, codec: str = "libx264") -> Path:
    """A tiny video whose frame i is solid gray i*STEP, keyframe every ``gop`` frames."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "preset": "ultrafast", "crf": "10"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((H, W, 3), i * STEP, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_id(img: np.ndarray) -> int:
    """The index a test frame encodes (its gray level / STEP), tolerating lossy compression."""
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    mean = float(img.mean())
    idx = round(mean / STEP)
    assert abs(mean - idx * STEP) <= 3, mean
    return idx


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("frames") / "scene"
    d.mkdir()
    for i in range(12):  # unpadded names: numeric order must win over name order (10 < 2)
        cv2.imwrite(str(d / f"{i}.jpg"), np.full((H, W, 3), i * STEP, np.uint8))
    return d


# ---------------------------------------------------------------------------- video files


def test_video_sequential(video):
    with open_frames(video) as reader:
        assert isinstance(reader, VideoReader) and reader.seekable
        assert len(reader) == N and (reader.height, reader.width) == (H, W)
        assert reader.fps == pytest.approx(25.0)
        assert reader.name == "clip" and reader.path_of(3) == str(video)
        assert [frame_id(reader[i]) for i in range(N)] == list(range(N))
        assert [(i, frame_id(f)) for i, f in reader] == [(i, i) for i in range(N)]


def test_video_sequential_decodes_each_frame_once(video):
    reader = open_frames(video)
    decoded = []
    real = reader._next_frame

    def counting(first=False):
        item = real(first)
        if item is not None:
            decoded.append(item[0])
        return item

    reader._next_frame = counting
    for i in range(N):
        reader[i]
    assert decoded == list(range(N))
    assert len(reader._cache) <= reader._cache.size
    reader.close()


def test_video_random_access(video):
    reader = open_frames(video)
    order = [30, 5, 6, 39, 0, 20, 19, 18, 2, 38, 38, 11]
    assert [frame_id(reader[i]) for i in order] == order
    reader.close()
    assert frame_id(reader[7]) == 7  # reopens after close


def test_video_returns_copies(video):
    reader = open_frames(video)
    reader[4][:] = 255
    assert frame_id(reader[4]) == 4


def test_video_stride(video):
    reader = open_frames(video, vid_stride=3)
    assert len(reader) == 14  # ceil(40 / 3)
    assert reader.fps == pytest.approx(25.0 / 3)
    assert [frame_id(f) for _, f in reader] == list(range(0, N, 3))
    assert [frame_id(reader[i]) for i in (13, 0, 7, 6)] == [39, 0, 21, 18]


def test_video_length_without_metadata(tmp_path):
    path = write_video(tmp_path / "clip.mkv", n=17)  # Matroska stores no frame count: packets are counted
    reader = open_frames(path)
    assert len(reader) == 17
    assert [frame_id(reader[i]) for i in (16, 3, 4)] == [16, 3, 4]


def test_video_index_errors(video):
    reader = open_frames(video)
    for bad in (N, -1):
        with pytest.raises(IndexError, match="out of range"):
            reader[bad]
    with pytest.raises(TypeError):
        reader["1"]


def test_video_errors(tmp_path):
    with pytest.raises(SAM2Error, match="source not found"):
        open_frames(tmp_path / "missing.mp4")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video" * 50)
    with pytest.raises(SAM2Error, match=r"cannot read video .*broken\.mp4") as info:
        open_frames(bad)
    assert "\n" not in str(info.value) and not isinstance(info.value, UsageError)
    with pytest.raises(UsageError, match="vid_stride"):
        open_frames(tmp_path, vid_stride=0)


# ---------------------------------------------------------------------------- image sequences


def test_frame_folder(folder):
    reader = open_frames(folder)
    assert isinstance(reader, ImageSequenceReader) and reader.seekable
    assert len(reader) == 12 and (reader.height, reader.width) == (H, W) and reader.fps is None
    assert reader.name == "scene"
    assert reader.path_of(10) == str(folder / "10.jpg")
    assert [frame_id(f) for _, f in reader] == list(range(12))
    assert [frame_id(reader[i]) for i in (11, 0, 5)] == [11, 0, 5]
    strided = open_frames(folder, vid_stride=5)
    assert len(strided) == 3 and [frame_id(f) for _, f in strided] == [0, 5, 10]
    assert strided.path_of(2) == str(folder / "10.jpg")
    with pytest.raises(IndexError):
        strided[3]


def test_glob_and_txt_list(folder, tmp_path):
    reader = open_frames(str(folder / "*.jpg"))
    assert [frame_id(f) for _, f in reader] == list(range(12))
    listing = tmp_path / "shots.txt"
    listing.write_text(f"# chosen frames\n{folder / '7.jpg'}\n\n{folder / '2.jpg'}\n")
    reader = open_frames(listing)
    assert reader.name == "shots" and len(reader) == 2
    assert [frame_id(reader[i]) for i in (1, 0)] == [2, 7]
    assert len(open_frames([folder / "3.jpg", folder / "4.jpg"])) == 2


def test_sequence_errors(tmp_path, folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SAM2Error, match="no JPEG/PNG frames"):
        open_frames(empty)
    with pytest.raises(SAM2Error, match="no images match"):
        open_frames(str(tmp_path / "*.jpg"))
    listing = tmp_path / "list.txt"
    listing.write_text("nope.jpg\n")
    with pytest.raises(SAM2Error, match="source not found: .*nope.jpg"):
        open_frames(listing)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "0.jpg"), np.zeros((H, W, 3), np.uint8))
    cv2.imwrite(str(mixed / "1.jpg"), np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(SAM2Error, match="same size"):
        open_frames(mixed)[1]


# ---------------------------------------------------------------------------- live streams


def test_stream_refuses_random_access():
    reader = open_frames("rtsp://user:pw@cam.local:554/live?x=1")  # not opened: nothing is contacted
    assert isinstance(reader, StreamReader) and not reader.seekable
    assert reader.length is None and reader.name == "cam.local_554_live"
    with pytest.raises(UsageError, match="is a live stream: frames can only be read in order"):
        reader[0]
    with pytest.raises(TypeError):
        len(reader)
    webcam = open_frames("0")
    assert isinstance(webcam, StreamReader) and webcam.name == "webcam0"
    with pytest.raises(UsageError, match="live stream"):
        webcam[3]


def test_stream_iterates_in_order(video):
    reader = StreamReader(str(video), vid_stride=2)  # PyAV reads a local file like a network stream
    assert (reader.height, reader.width) == (H, W) and reader.fps == pytest.approx(12.5)
    assert [(i, frame_id(f)) for i, f in reader][:4] == [(0, 0), (1, 2), (2, 4), (3, 6)]
    reader.close()
