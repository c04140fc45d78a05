"""What is happening now: live recognition on a camera, a network stream or a file played in real time.

A reader thread decodes the source with PyAV (FFmpeg), squashes each frame
to the stored size and appends it to a rolling buffer of one window
(`window` seconds, default `Classifier.clip_seconds`). The calling thread
classifies the newest window whenever `stride` seconds of new frames have
arrived, as evaluation classifies a whole video (`Classifier.classify_frames`),
and yields a `StreamResult` with the stream time, the label, its probability
and the latency from the arrival of the window's last frame to the label.

Sources: a camera device (`/dev/video0`, or just `0`; Video4Linux), an
RTSP / RTMP / HTTP(S) / UDP / SRT URL, or a video file. A file is read at its
own frame rate times `rate` (the source's clock: 1 = real time, 4 = four
times faster) as if it were a camera; `rate=0` reads it as fast as the model
consumes it, every stride classified (nothing can be dropped).

Keeping up. The reader never waits for the model (except with `rate=0`): a
live source does not wait either. When a classification takes longer than a
stride, the stride points that passed meanwhile are skipped (counted in
`windows_skipped`) and the next prediction takes the newest window; a frame
that leaves the buffer without having been part of any classified window is
counted in `frames_dropped`. A file read in real time whose decoding falls
behind its clock is reported by `reader_lag` (the most seconds, of the
file's clock, the reader was late). `StreamStats.kept_up` is true only when nothing was skipped or
dropped and the reader stayed within a stride of the clock. Nothing is
skipped silently.

When the source ends (or `duration` seconds of it have been read), the
frames after the last prediction are classified as one last window, so a
file read with `rate=0` gives exactly the windows of `timeline`.
"""

import collections
import dataclasses
import os
import threading
import time

import numpy as np

from glimpse_keras.class_probabilities import TOP_K, ClassifierError, ClassProbabilities, top_json

DEFAULT_TIMEOUT = 10.0
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")


class StreamError(ClassifierError):
    """A source that cannot be opened, or a stream that stopped; the message names the source."""


@dataclasses.dataclass
class StreamResult(ClassProbabilities):
    """One prediction of a stream.

    Attributes:
        index: the prediction's number, from 0.
        start, end: stream seconds of the window (end = after its last frame).
        start_frame, end_frame: the window's frames [start_frame, end_frame).
        probabilities: float (classes,).
        class_names: the model's class names.
        latency: seconds from the arrival of the window's last frame to this result.
    """

    index: int
    start: float
    end: float
    start_frame: int
    end_frame: int
    probabilities: np.ndarray
    class_names: list
    latency: float

    @property
    def time(self):
        """Stream seconds at the end of the window (when the label applies)."""
        return self.end

    def to_json(self, k=TOP_K):
        return {
            "time": round(self.time, 3),
            "start": round(self.start, 3),
            "label": self.label,
            "probability": round(self.probability, 6),
            "latency": round(self.latency, 4),
            "top": top_json(self.probabilities, self.class_names, k),
        }


@dataclasses.dataclass
class StreamStats:
    """What a stream did; see the module docstring for the counts.

    Attributes:
        source: the source as given.
        fps: the frame rate used for the window and the times.
        window_frames, stride_frames: the window and stride in frames.
        frames_read: frames decoded from the source.
        frames_dropped: frames that no classified window contained.
        windows: predictions made.
        windows_skipped: stride points passed while the model was busy.
        wall_seconds: seconds from the first frame read to the end.
        source_seconds: stream seconds read.
        latencies: seconds, one per prediction.
        reader_lag: files read in real time: the most seconds (of the file's
            clock) the reader fell behind it (0 otherwise).
        ended: why the stream ended: "end of source", "duration", "stopped"
            (an error) or "interrupted".
    """

    source: str
    fps: float
    window_frames: int
    stride_frames: int
    paced: bool
    frames_read: int = 0
    frames_dropped: int = 0
    windows: int = 0
    windows_skipped: int = 0
    wall_seconds: float = 0.0
    source_seconds: float = 0.0
    latencies: list = dataclasses.field(default_factory=list)
    reader_lag: float = 0.0
    ended: str = ""

    @property
    def frames_per_second(self):
        """Frames read per wall second."""
        return self.frames_read / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def kept_up(self):
        within = not self.paced or self.reader_lag <= self.stride_frames / self.fps
        return self.frames_dropped == 0 and self.windows_skipped == 0 and within

    def summary(self):
        """One or two lines for the end of `glimpse-predict --stream`."""
        latency = ""
        if self.latencies:
            latency = (f"; latency last frame -> label: mean {np.mean(self.latencies):.3f} s, "
                       f"max {np.max(self.latencies):.3f} s")
        text = (f"{self.source}: {self.frames_read} frames ({self.source_seconds:.2f} s of stream) in "
                f"{self.wall_seconds:.2f} s ({self.frames_per_second:.1f} frames/s), {self.windows} windows"
                f"{latency}; ended: {self.ended}")
        if self.kept_up:
            return text + "\nkept up: no frame dropped, no window skipped"
        lag = f", the reader fell {self.reader_lag:.2f} s behind the source's clock" if self.paced else ""
        return (text + f"\ncould NOT keep up: {self.frames_dropped} frames dropped (never classified), "
                       f"{self.windows_skipped} windows skipped{lag}")

    def to_json(self):
        return {
            "source": self.source,
            "fps": round(self.fps, 6),
            "frames_read": self.frames_read,
            "frames_dropped": self.frames_dropped,
            "windows": self.windows,
            "windows_skipped": self.windows_skipped,
            "wall_seconds": round(self.wall_seconds, 3),
            "source_seconds": round(self.source_seconds, 3),
            "frames_per_second": round(self.frames_per_second, 3),
            "latency_mean": round(float(np.mean(self.latencies)), 4) if self.latencies else None,
            "latency_max": round(float(np.max(self.latencies)), 4) if self.latencies else None,
            "reader_lag": round(self.reader_lag, 3),
            "kept_up": self.kept_up,
            "ended": self.ended,
        }


# === Sources ===


def describe_source(source):
    """(url, format, options, live) with which PyAV opens `source`.

    A number or /dev/videoN is a Video4Linux camera; a URL with one of
    `LIVE_SCHEMES` is a network stream (RTSP over TCP); anything else is a file.
    """
    source = os.fspath(source)
    if source.isdigit():
        return f"/dev/video{source}", "v4l2", {}, True
    if source.startswith("/dev/video"):
        return source, "v4l2", {}, True
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    if scheme in LIVE_SCHEMES:
        options = {"rtsp_transport": "tcp"} if scheme.startswith("rtsp") else {}
        return source, None, options, True
    return source, None, {}, False


def open_source(source, timeout=DEFAULT_TIMEOUT):
    """Opens a stream source with PyAV.

    Returns:
        (container, video stream, live: bool).

    Raises:
        StreamError: naming the source and FFmpeg's reason (no such file or
            device, connection refused, no video stream, ...).
    """
    import av

    url, form, options, live = describe_source(source)
    if not live and not os.path.isfile(url):
        raise StreamError(f"cannot open stream {source}: no such file (expected a video file, a camera "
                          "such as /dev/video0, or an rtsp://, http:// ... URL)")
    try:
        container = av.open(url, format=form, options=options, timeout=(timeout, timeout) if live else None)
    except Exception as error:  # noqa: BLE001 - FFmpeg and the OS raise many error types
        raise StreamError(f"cannot open stream {source}: {error}") from error
    if not container.streams.video:
        container.close()
        raise StreamError(f"cannot open stream {source}: it has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream, live


@dataclasses.dataclass
class _Frame:
    index: int
    time: float
    arrival: float
    image: np.ndarray


class Stream:
    """A live prediction loop over one source; iterate it once for `StreamResult`s.

    See `Classifier.stream` for the arguments and the module docstring for
    the behaviour. The source (and `output_video`) are opened here, so a
    source that cannot be opened fails at once.

    Attributes:
        stats: `StreamStats`, updated as the stream runs, final after the
            iteration ends (also when it raises).
        window_seconds, stride_seconds, window_frames, stride_frames, fps.

    Raises:
        StreamError: a bad rate or duration, a source that cannot be
            opened or declares no frame rate (pass fps); during iteration:
            the stream stopped (the results before were yielded) or ended
            before one window.
        timeline.TimelineError: a bad window or stride.
        AnnotatedVideoError: `output_video` cannot be written.
    """

    def __init__(self, classifier, source, *, window=None, stride=None, fps=None, rate=1.0, duration=None,
                 output_video=None, timeout=None):
        from glimpse_keras.data.video import frame_rate_of
        from glimpse_keras.timeline import window_lengths

        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate < 0:
            raise StreamError(f"--rate must be a number >= 0 (0: as fast as the model goes), got {rate!r}")
        if duration is not None and not (isinstance(duration, (int, float)) and duration > 0):
            raise StreamError(f"--duration must be a positive number of seconds, got {duration!r}")
        self.classifier = classifier
        self.source = os.fspath(source)
        self.duration = duration
        self.timeout = float(timeout or DEFAULT_TIMEOUT)
        # One classification before the source is opened: tracing or compiling
        # the model on its first call must not count as the stream falling
        # behind, nor leave a live source unread meanwhile.
        side = classifier.frame_side
        classifier.classify_frames(np.zeros((1, side, side, 3), np.uint8))
        self._container, self._video, live = open_source(self.source, self.timeout)
        try:
            self.fps_given = bool(fps)
            self.fps = float(fps) if fps else frame_rate_of(self._video)
            if not self.fps:
                raise StreamError(f"stream {self.source}: the source declares no frame rate; pass --fps "
                                  "(fps=) with its frames per second")
            self.window_seconds, self.stride_seconds, self.window_frames, self.stride_frames = window_lengths(
                window, stride, self.fps, classifier.clip_seconds, self.source)
            self.live = live
            self.rate = 1.0 if live else float(rate)
            self.lockstep = not live and self.rate == 0
            self.stats = StreamStats(source=self.source, fps=self.fps, window_frames=self.window_frames,
                                     stride_frames=self.stride_frames, paced=not live and not self.lockstep)
            self._writer = None
            if output_video:
                from glimpse_keras.visualize.annotated_video import AnnotatedVideoWriter

                self._writer = AnnotatedVideoWriter(output_video, self.fps)
        except BaseException:
            self._container.close()
            raise
        self._condition = threading.Condition()
        self._buffer = collections.deque()
        self._newest = -1
        self._covered = -1
        self._next_end = self.window_frames - 1
        self._done = False
        self._error = None
        self._stop = threading.Event()
        self._banner = "waiting for the first window"
        self._started = None
        self._used = False

    # --- reader thread ---

    def _can_append(self):
        if not self.lockstep or len(self._buffer) < self.window_frames:
            return True
        return self._buffer[0].index < self._next_end - self.window_frames + 1

    def _append(self, frame):
        with self._condition:
            while not self._can_append() and not self._stop.is_set():
                self._condition.wait(0.1)
            self._buffer.append(frame)
            keep_from = self._next_end - self.window_frames + 1 if self.lockstep else None
            while len(self._buffer) > self.window_frames:
                if keep_from is not None and self._buffer[0].index >= keep_from:
                    break
                evicted = self._buffer.popleft()
                if evicted.index > self._covered:
                    self.stats.frames_dropped += 1
            self._newest = frame.index
            self.stats.frames_read = frame.index + 1
            self.stats.source_seconds = frame.time + 1.0 / self.fps
            self._condition.notify_all()

    def _read(self):
        from glimpse_keras.data.video import resize_frame

        side = self.classifier.frame_side
        first_time = None
        index = 0
        ended = "end of source"
        try:
            for decoded in self._container.decode(self._video):
                if self._stop.is_set():
                    ended = "interrupted"
                    break
                if decoded.time is not None and not self.fps_given:
                    first_time = decoded.time if first_time is None else first_time
                    stream_time = decoded.time - first_time
                else:  # no time stamps, or a frame rate given instead of the container's
                    stream_time = index / self.fps
                if self.duration is not None and stream_time >= self.duration:
                    ended = "duration"
                    break
                if self.stats.paced:
                    delay = self._started + stream_time / self.rate - time.perf_counter()
                    if delay > 0:
                        self._stop.wait(delay)
                    else:  # in seconds of the source's clock
                        self.stats.reader_lag = max(self.stats.reader_lag, -delay * self.rate)
                image = decoded.to_ndarray(format="rgb24")
                self._append(_Frame(index, stream_time, time.perf_counter(), resize_frame(image, (side, side))))
                if self._writer is not None:
                    self._writer.write(image, self._banner)
                index += 1
        except Exception as error:  # noqa: BLE001 - reported by the consuming thread, never lost
            self._error = error
            ended = "stopped"
        with self._condition:
            self.stats.ended = self.stats.ended or ended
            self._done = True
            self._condition.notify_all()

    # --- consuming thread ---

    def _next_window(self):
        """Waits for the next window; returns (frames, last_frame) or None at the end."""
        with self._condition:
            while self._newest < self._next_end and not self._done:
                self._condition.wait(0.1)
            if self._newest >= self._next_end:
                end = self._next_end if self.lockstep else self._newest
                self.stats.windows_skipped += (end - self._next_end) // self.stride_frames
            elif self._newest > self._covered and self._newest + 1 >= self.window_frames:
                end = self._newest  # the end of the source: the frames after the last prediction
            else:
                return None
            frames = [frame for frame in self._buffer if end - self.window_frames < frame.index <= end]
            self._covered = end
            self._next_end = end + self.stride_frames
            self._condition.notify_all()
        return frames

    def __iter__(self):
        if self._used:
            raise StreamError(f"stream {self.source} was already read; open a new one")
        self._used = True
        self._started = time.perf_counter()
        reader = threading.Thread(target=self._read, name="glimpse-stream-reader", daemon=True)
        reader.start()
        try:
            while True:
                frames = self._next_window()
                if frames is None:
                    break
                outputs = self.classifier.classify_frames([frame.image for frame in frames])
                last = frames[-1]
                result = StreamResult(
                    index=self.stats.windows, start=frames[0].time, end=last.time + 1.0 / self.fps,
                    start_frame=frames[0].index, end_frame=last.index + 1,
                    probabilities=outputs["probabilities"], class_names=self.classifier.class_names,
                    latency=time.perf_counter() - last.arrival)
                self.stats.windows += 1
                self.stats.latencies.append(result.latency)
                self._banner = f"{result.label} {result.probability:.2f} ({result.time:.1f} s)"
                yield result
        except (GeneratorExit, KeyboardInterrupt):
            with self._condition:
                self.stats.ended = self.stats.ended or "interrupted"
            raise
        finally:
            self._stop.set()
            with self._condition:
                self._condition.notify_all()
            reader.join(timeout=DEFAULT_TIMEOUT + 1)
            self.stats.wall_seconds = time.perf_counter() - self._started
            self._close()
        self._raise_if_stopped()

    def _close(self):
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - closing a broken network stream may fail again
            pass
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def _raise_if_stopped(self):
        if self._error is not None:
            from glimpse_keras.visualize.annotated_video import AnnotatedVideoError

            if isinstance(self._error, AnnotatedVideoError):
                raise self._error
            reason = str(self._error)
            if self.live and type(self._error).__name__ == "ExitError":  # FFmpeg's read timeout
                reason = f"no data for {self.timeout:g} s ({reason})"
            raise StreamError(
                f"stream {self.source} stopped after {self.stats.frames_read} frames "
                f"({self.stats.source_seconds:.2f} s): {reason}") from self._error
        if self.stats.frames_read < self.window_frames:
            raise StreamError(
                f"stream {self.source} ended after {self.stats.frames_read} frames "
                f"({self.stats.source_seconds:.2f} s), before one window of {self.window_seconds:g} s "
                f"({self.window_frames} frames at {self.fps:g} fps); pass a shorter --window")

    def close(self):
        """Releases the source and the output video when the stream is not iterated to its end."""
        if not self._used:
            self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


def format_result(result):
    """The text line of one prediction: stream time, label, probability, window and latency."""
    return (f"{result.time:9.2f} s  {result.label:<40} {result.probability:7.2%}  "
            f"(window {result.start:.2f}-{result.end:.2f} s, latency {result.latency:.3f} s)")
