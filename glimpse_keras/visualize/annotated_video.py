"""A video written again with its predicted class and the glimpse boxes drawn.

Used by `glimpse-predict --output-video` (`glimpse_keras.cli.predict`). The label
is drawn on every frame; the glimpse boxes of a frame that a clip sampled stay
until the next sampled frame. Glimpse locations are in [-1, 1] of the centre
crop the model saw (image_size of the frame squashed to stored_size);
`frame_location` maps them onto the whole frame, and the boxes are drawn with
`visualize.drawing.location_to_box` / `draw_box` in `glimpse_colour(g)`.

`AnnotatedVideoWriter` encodes frames one at a time; `--timeline` (each
frame with its segment's label) and `--stream` (the current label) write
through it too.
"""

import os

import numpy as np

from glimpse_keras.errors import GlimpseError


class AnnotatedVideoError(GlimpseError, ValueError):
    """The annotated video cannot be written (the message names the path)."""


def frame_location(location, image_size, stored_size=None):
    """Maps a glimpse from [-1, 1] of the centre crop onto [-1, 1] of the whole frame.

    The crop is the centred image_size window, corner (stored - S) // 2, of
    the frame squashed to stored x stored (stored = image_size without a
    stored size), so u_frame = 2 * (corner + (u + 1) / 2 * S) / stored - 1
    and s_frame = s * S / stored. Squashing is linear in each axis, so the
    same numbers hold for the frame at its own size.

    Args:
        location: [x, y, s_x, s_y] in crop coordinates.
        image_size: S.
        stored_size: int or None.

    Returns:
        float64 (4,) [x, y, s_x, s_y] in frame coordinates.
    """
    stored = stored_size or image_size
    corner = (stored - image_size) // 2
    x, y, scale_x, scale_y = np.asarray(location, np.float64)
    ratio = image_size / stored

    def centre(u):
        return 2.0 * (corner + (u + 1.0) * 0.5 * image_size) / stored - 1.0

    return np.array([centre(x), centre(y), scale_x * ratio, scale_y * ratio])


def boxes_per_frame(prediction, image_size, stored_size=None):
    """Frame index -> list of (glimpse, location in frame coordinates).

    `prediction` has `frame_indices` (K, T) and `locations` (K, T, G, 4)
    (`glimpse_keras.classifier.Prediction`).

    A frame sampled by several clips shows the glimpses of the first clip
    that sampled it. Glimpses of zero size (global variants) are left out.
    """
    boxes = {}
    clips, steps = prediction.frame_indices.shape
    for k in range(clips):
        for t in range(steps):
            frame = int(prediction.frame_indices[k, t])
            if frame in boxes:
                continue
            boxes[frame] = [
                (g, frame_location(location, image_size, stored_size))
                for g, location in enumerate(prediction.locations[k, t])
                if location[2] > 0 and location[3] > 0
            ]
    return boxes


def annotate_frame(image, label, boxes):
    """Draws the label banner and glimpse boxes on one RGB frame (in place).

    Args:
        image: uint8 (H, W, 3), modified.
        label: text written at the top left on a dark banner.
        boxes: list of (glimpse index, [x, y, s_x, s_y] in frame coordinates),
            drawn with `visualize.drawing.location_to_box` / `draw_box` in
            `glimpse_colour(g)`.
    """
    import cv2

    from glimpse_keras.visualize.drawing import border_thickness, draw_box, glimpse_colour, location_to_box

    height, width = image.shape[:2]
    thickness = border_thickness(min(height, width))
    for glimpse, location in boxes:
        draw_box(image, location_to_box(location, height, width), glimpse_colour(glimpse), thickness)
    scale = max(0.35, min(height, width) / 480.0)
    (text_width, text_height), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    banner = min(height, text_height + baseline + 6)
    image[:banner, : min(width, text_width + 8)] = (0, 0, 0)
    cv2.putText(image, label, (4, text_height + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)


def _video_rate(path):
    """The source's average frame rate (a Fraction), 25 when unknown."""
    from fractions import Fraction

    try:
        import av

        with av.open(path) as container:
            rate = container.streams.video[0].average_rate
            if rate:
                return Fraction(rate)
    except Exception:  # noqa: BLE001 - any FFmpeg failure falls back to the default
        pass
    return Fraction(25)


def write_annotated_video(prediction, output, image_size, stored_size=None):
    """Writes the source video at its own size and rate with the label and glimpses drawn.

    The label is "<class name> <probability>" of the top class. Frames that
    a clip sampled get that clip's glimpse boxes (`boxes_per_frame`); the
    boxes stay until the next sampled frame. See `AnnotatedVideoWriter` for
    the encoding.

    Returns:
        the number of frames written.

    Raises:
        VideoDecodeError: the source cannot be decoded again.
        AnnotatedVideoError: the output cannot be written (names the path).
    """
    from glimpse_keras.data.video import iter_video_frames

    class_id, name, probability = prediction.top(1)[0]
    label = f"{name} {probability:.2f}"
    boxes = boxes_per_frame(prediction, image_size, stored_size)
    current = []
    with AnnotatedVideoWriter(output, _video_rate(prediction.source)) as writer:
        for index, frame in enumerate(iter_video_frames(prediction.source)):
            current = boxes.get(index, current)
            writer.write(frame, label, current)
    return writer.frames_written


class AnnotatedVideoWriter:
    """Encodes RGB frames with a label banner (and glimpse boxes) into a video file, frame by frame.

    H.264 (libx264) when PyAV has it, else MPEG-4 Part 2; the size is the
    first frame's, odd sizes padded by one black pixel (yuv420p needs even
    sizes). The file is written under a temporary name and renamed by
    `close()`; a writer left by an exception (`with` block) removes it, and
    `close()` after an error keeps the frames written so far.

    Args:
        output: the video file (.mp4, .m4v, .mov, .mkv or .avi).
        rate: frames per second (a number or Fraction).

    Attributes:
        frames_written: int.

    Raises:
        AnnotatedVideoError: the output cannot be written (names the path).
    """

    def __init__(self, output, rate):
        import av

        from glimpse_keras.io_utils import atomic_path

        self.output = os.fspath(output)
        self.rate = rate
        self.frames_written = 0
        self._codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self._atomic = atomic_path(self.output)
        self._stream = None
        extension = os.path.splitext(self.output)[1].lower() or ".mp4"
        try:
            self._tmp = self._atomic.__enter__()
            self._container = av.open(self._tmp, "w", format=_container_format(extension))
        except (OSError, av.FFmpegError) as error:
            self._abort(error)
            raise AnnotatedVideoError(f"{self.output}: cannot write the annotated video: {error}") from error

    def write(self, frame, label, boxes=()):
        """Draws `label` (and `boxes`, see `annotate_frame`) on a copy of `frame` and encodes it."""
        import av

        try:
            if self._stream is None:
                from fractions import Fraction

                height, width = frame.shape[:2]
                self._stream = self._container.add_stream(self._codec, rate=Fraction(self.rate).limit_denominator(1001))
                self._stream.width, self._stream.height = width + width % 2, height + height % 2
                self._stream.pix_fmt = "yuv420p"
                if self._codec == "mpeg4":
                    self._stream.options = {"qscale": "3"}
            image = np.zeros((self._stream.height, self._stream.width, 3), np.uint8)
            image[: frame.shape[0], : frame.shape[1]] = frame[: self._stream.height, : self._stream.width]
            annotate_frame(image, label, boxes)
            for packet in self._stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                self._container.mux(packet)
            self.frames_written += 1
        except (OSError, av.FFmpegError) as error:
            self._abort(error)
            raise AnnotatedVideoError(f"{self.output}: cannot write the annotated video: {error}") from error

    def close(self):
        """Flushes the encoder and renames the file into place (nothing when already closed)."""
        import av

        if self._atomic is None:
            return
        try:
            if self._stream is not None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
            atomic, self._atomic = self._atomic, None
            atomic.__exit__(None, None, None)
        except (OSError, av.FFmpegError) as error:
            self._abort(error)
            raise AnnotatedVideoError(f"{self.output}: cannot write the annotated video: {error}") from error

    def _abort(self, error):
        if self._atomic is None:
            return
        container = getattr(self, "_container", None)
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - the first error is the one reported
                pass
        atomic, self._atomic = self._atomic, None
        try:
            atomic.__exit__(type(error), error, None)
        except BaseException:  # noqa: BLE001 - atomic_path re-raises the error it was given
            pass

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None:
            self.close()
        else:
            self._abort(error)
        return False


OUTPUT_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}


def _container_format(extension):
    return OUTPUT_CONTAINERS.get(extension, "mp4")
