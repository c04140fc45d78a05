"""Video decoding to RGB uint8 frames, with on-the-fly resizing.

Frames are decoded one by one with PyAV (FFmpeg) and, when `size` is given,
resized immediately with area interpolation, so a 1920x1080 clip never sits in
memory at full resolution. OpenCV (also FFmpeg-backed) is the fallback when
PyAV is not installed; its BGR output is converted to RGB.

Frame counts come from decoding, never from the container header. The header
is only used to detect truncation: a truncated AVI opens, decodes its first
frames and then simply ends (measured with PyAV 18 / FFmpeg on an MPEG-4 Part 2
AVI cut to 95%, 80%, 60%: 86, 73, 49 of 90 declared frames, no exception), so a
decoded count more than `max_missing_frames` below the declared count is
reported as truncation. Two frames of slack allow for containers whose header
overstates the decodable frames (DATASETS.md pitfall 7); for short clips the
slack shrinks to a tenth of the declared count, so a 3-frame clip cut to 1
frame is still caught.

The decoders read local files: a video on a remote file system (a URL, see
`glimpse_keras.filesystem`) is copied to a local temporary file first, which
is removed when decoding ends; errors name the URL.
"""

import os

import numpy as np

from glimpse_keras import filesystem
from glimpse_keras.data.errors import VideoDecodeError

try:
    import av
except ImportError:  # pragma: no cover - exercised only without PyAV
    av = None

VIDEO_BACKENDS = ("auto", "pyav", "opencv")
DEFAULT_MAX_MISSING_FRAMES = 2


def resize_frame(frame, size):
    """One uint8 (H, W, 3) frame squashed to size = (width, height) with area
    interpolation (the resize of decoding and of the converter); unchanged
    when size is None or already the frame's."""
    if size is None or (frame.shape[1], frame.shape[0]) == tuple(size):
        return frame
    import cv2

    return cv2.resize(frame, tuple(int(v) for v in size), interpolation=cv2.INTER_AREA)


def frame_rate_of(stream):
    """The frame rate a PyAV video stream declares, in frames per second.

    The container's average rate, else FFmpeg's estimate from the stream's
    time stamps (`guessed_rate`; e.g. MPEG-TS declares no average rate).

    Returns:
        float > 0, or None when the container gives neither.
    """
    for rate in (getattr(stream, "average_rate", None), getattr(stream, "guessed_rate", None)):
        if rate and float(rate) > 0:
            return float(rate)
    return None


def probe_video(path):
    """What a video file's container says about its first video stream, without decoding it.

    Returns:
        dict with "width", "height" (pixels), "frame_rate" (float frames per
        second, or None when undeclared, see `frame_rate_of`) and
        "declared_frames" (int, 0 when unknown).

    Raises:
        VideoDecodeError: missing file, unreadable container or no video stream.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "file not found")
    if av is None:  # pragma: no cover - exercised only without PyAV
        import cv2

        capture = cv2.VideoCapture(path)
        try:
            if not capture.isOpened():
                raise VideoDecodeError(path, "unreadable container (OpenCV could not open it)")
            rate = capture.get(cv2.CAP_PROP_FPS)
            return {"width": int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                    "height": int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                    "frame_rate": float(rate) if rate > 0 else None,
                    "declared_frames": int(max(capture.get(cv2.CAP_PROP_FRAME_COUNT), 0))}
        finally:
            capture.release()
    container, stream = _open_pyav(path)
    with container:
        return {"width": int(stream.codec_context.width), "height": int(stream.codec_context.height),
                "frame_rate": frame_rate_of(stream), "declared_frames": int(stream.frames or 0)}


def _check_size(path, size):
    if size is None:
        return None
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height), got {size!r} for {path}") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive, got {size!r} for {path}")
    return width, height


def _check_count(path, decoded, declared, max_missing_frames):
    if decoded == 0:
        raise VideoDecodeError(path, "no decodable frame (zero-frame or corrupt video)")
    slack = min(max_missing_frames, declared // 10)
    if declared and decoded < declared - slack:
        raise VideoDecodeError(
            path, f"truncated: decoded {decoded} frames but the container declares "
                  f"{declared}")


def _open_pyav(path):
    """(container, first video stream) of a file; the container is closed on failure."""
    try:
        container = av.open(path)
    except Exception as error:  # PyAV raises many FFmpeg error subclasses.
        raise VideoDecodeError(path, f"unreadable container: {error}") from error
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(path, "the container has no video stream")
    return container, container.streams.video[0]


def _iter_pyav(path, size, max_missing_frames):
    container, stream = _open_pyav(path)
    with container:
        stream.thread_type = "AUTO"
        declared = int(stream.frames or 0)
        decoded = 0
        try:
            for frame in container.decode(stream):
                image = frame.to_ndarray(format="rgb24")
                decoded += 1
                yield resize_frame(image, size)
        except av.FFmpegError as error:
            raise VideoDecodeError(
                path, f"decode failure after {decoded} frames: {error}") from error
    _check_count(path, decoded, declared, max_missing_frames)


def _iter_opencv(path, size, max_missing_frames):
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise VideoDecodeError(path, "unreadable container (OpenCV could not open it)")
        declared = int(max(capture.get(cv2.CAP_PROP_FRAME_COUNT), 0))
        decoded = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            decoded += 1
            yield resize_frame(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), size)
    finally:
        capture.release()
    _check_count(path, decoded, declared, max_missing_frames)


def iter_video_frames(path, size=None, *, backend="auto",
                      max_missing_frames=DEFAULT_MAX_MISSING_FRAMES):
    """Decodes a video frame by frame.

    Args:
        path: the video file: a local path or a URL (`glimpse_keras.filesystem`).
        size: optional (width, height); each frame is resized to it with area
            interpolation right after decoding.
        backend: 'auto' (PyAV if installed, else OpenCV), 'pyav' or 'opencv'.
        max_missing_frames: how many frames fewer than the container declares
            may decode before the file counts as truncated.

    Yields:
        uint8 (H, W, 3) RGB frames, (H, W) = the stored size or size[::-1].

    Raises:
        VideoDecodeError: naming the path and the reason: missing file,
            unreadable container, no video stream, decode failure mid-stream,
            zero frames, or truncation. Truncation and zero frames are only
            known at the end, so they are raised after the last frame.
        ValueError: a bad `size` or `backend`.
    """
    path = os.fspath(path)
    size = _check_size(path, size)
    if backend not in VIDEO_BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; expected one of {VIDEO_BACKENDS}")
    if not filesystem.isfile(path):
        raise VideoDecodeError(path, "file not found")
    if backend == "pyav" or (backend == "auto" and av is not None):
        if av is None:
            raise ValueError("backend 'pyav' requested but PyAV (av) is not installed")
        decode = _iter_pyav
    else:
        decode = _iter_opencv
    if filesystem.is_local(path):
        return decode(path, size, max_missing_frames)
    return _iter_local_copy(decode, path, size, max_missing_frames)


def _iter_local_copy(decode, url, size, max_missing_frames):
    """`decode` over a local temporary copy of a remote video; errors name `url`."""
    with filesystem.local_copy(url) as local:
        try:
            yield from decode(local, size, max_missing_frames)
        except VideoDecodeError as error:
            raise VideoDecodeError(url, error.reason.replace(local, url)) from error


def read_video(path, size=None, **kwargs):
    """Decodes a whole video into one array; see iter_video_frames.

    Returns:
        uint8 (F, H, W, 3) RGB, F counted by decoding.

    Raises:
        VideoDecodeError: as iter_video_frames.
    """
    return np.stack(list(iter_video_frames(path, size, **kwargs)))
