"""Tests for video decoding: counts, RGB order, resizing and decode errors."""

import av
import numpy as np
import pytest

from glimpse_keras.data.errors import VideoDecodeError
from glimpse_keras.data.video import iter_video_frames, read_video

WIDTH, HEIGHT = 128, 96
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def write_avi(path, images, rate=30):
    """Encodes RGB uint8 images as an MPEG-4 Part 2 AVI with PyAV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height = images[0].shape[1], images[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"}
        container.start_encoding()
        for image in images:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def solid(colour):
    return np.broadcast_to(np.uint8(COLOURS[colour]), (HEIGHT, WIDTH, 3)).copy()


def noisy_frames(count, seed=0):
    """Incompressible frames, so a byte cut lands well inside the frame data."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture(scope="module")
def colour_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "S001C001P001R001A001_rgb.avi"
    write_avi(path, [solid("red")] * 4 + [solid("green")] * 3 + [solid("blue")] * 3)
    return str(path)


def assert_colour(pixel_block, colour):
    mean = pixel_block.reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(mean, COLOURS[colour], atol=12)


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_decodes_every_frame_in_rgb_order(colour_clip, backend):
    video = read_video(colour_clip, backend=backend)
    assert video.shape == (10, HEIGHT, WIDTH, 3) and video.dtype == np.uint8
    for index, colour in [(0, "red"), (3, "red"), (4, "green"), (6, "green"),
                          (7, "blue"), (9, "blue")]:
        assert_colour(video[index, 8:-8, 8:-8], colour)


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_resizes_each_frame_on_the_fly(colour_clip, backend):
    frames = iter_video_frames(colour_clip, size=(32, 20), backend=backend)
    first = next(frames)  # a lazy iterator, not a decoded list
    assert first.shape == (20, 32, 3) and first.dtype == np.uint8
    assert_colour(first[2:-2, 2:-2], "red")
    rest = list(frames)
    assert len(rest) == 9
    assert_colour(rest[-1][2:-2, 2:-2], "blue")


def test_area_resize_averages_a_two_colour_frame(tmp_path):
    image = solid("red")
    image[:, WIDTH // 2:] = COLOURS["blue"]
    path = tmp_path / "half.avi"
    write_avi(path, [image] * 2)
    small = read_video(str(path), size=(2, 1))
    assert small.shape == (2, 1, 2, 3)
    assert_colour(small[:, :, 0], "red")
    assert_colour(small[:, :, 1], "blue")


def test_truncated_file_raises(tmp_path):
    whole = tmp_path / "whole.avi"
    write_avi(whole, noisy_frames(20))
    assert read_video(str(whole)).shape[0] == 20
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    for backend in ("pyav", "opencv"):
        with pytest.raises(VideoDecodeError) as info:
            read_video(str(cut), backend=backend)
        assert info.value.path == str(cut)
        assert "truncated: decoded" in info.value.reason
        assert "declares 20" in info.value.reason
    # Losing only the trailing index costs no frame: not an error.
    cut.write_bytes(data[:-16])
    assert read_video(str(cut)).shape[0] == 20


def test_missing_empty_and_corrupt_files(tmp_path):
    with pytest.raises(VideoDecodeError, match="file not found"):
        read_video(str(tmp_path / "absent.avi"))
    empty = tmp_path / "empty.avi"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        container.start_encoding()
    for backend in ("pyav", "opencv"):
        with pytest.raises(VideoDecodeError, match="no decodable frame"):
            read_video(str(empty), backend=backend)
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"RIFF" + bytes(300))
    with pytest.raises(VideoDecodeError, match="unreadable container") as info:
        read_video(str(junk))
    assert isinstance(info.value, ValueError) and info.value.path == str(junk)


def test_argument_errors(colour_clip):
    with pytest.raises(ValueError, match="width, height"):
        read_video(colour_clip, size=64)
    with pytest.raises(ValueError, match="positive"):
        read_video(colour_clip, size=(0, 10))
    with pytest.raises(ValueError, match="'gstreamer'"):
        read_video(colour_clip, backend="gstreamer")
