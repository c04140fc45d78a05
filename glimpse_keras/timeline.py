"""When each action happens in a long video: sliding windows merged into segments.

A window of `window` seconds (default: the typical duration of the model's
training videos, `Classifier.clip_seconds`) slides over the video every
`stride` seconds (default: half a window). Each window is classified as
evaluation classifies a whole video (K clips of T frames at the fixed bin
offsets inside the window, logits averaged; `Classifier.classify_frames`).
When the last window does not reach the end of the video, one more window
ends on the last frame, so every frame is seen.

Consecutive windows with the same top class merge into a segment. Each
window stands for the time around its centre: a segment boundary lies
halfway between the centres of the last window of one label and the first of
the next; the first segment starts at 0 and the last ends with the video. A
segment's probability is the mean, over its windows, of its label's
probability.

Frames are decoded one at a time and squashed to the stored size right away
(`data.video.iter_video_frames`); only the last window of frames is kept
(`SlidingWindows`), so memory does not grow with the video's length. Times
are frame index / frame rate, the rate the container declares (or `fps`).
"""

import collections
import dataclasses
import itertools
import os

import numpy as np

from glimpse_keras.class_probabilities import TOP_K, ClassifierError, ClassProbabilities, top_json

DEFAULT_STRIDE_FRACTION = 0.5


class TimelineError(ClassifierError):
    """A timeline that cannot be computed or that stopped early; the message names the video and the value.

    Attributes:
        timeline: the `Timeline` of the windows computed before the failure
            (`complete` False), or None when there were none.
    """

    def __init__(self, message, timeline=None):
        super().__init__(message)
        self.timeline = timeline


@dataclasses.dataclass
class Window(ClassProbabilities):
    """One classified window: frames [start_frame, end_frame) of the video."""

    index: int
    start_frame: int
    end_frame: int
    fps: float
    probabilities: np.ndarray
    class_names: list

    @property
    def start(self):
        """Seconds from the start of the video to the window's first frame."""
        return self.start_frame / self.fps

    @property
    def end(self):
        """Seconds to the end of the window's last frame."""
        return self.end_frame / self.fps

    @property
    def centre(self):
        return 0.5 * (self.start + self.end)

    def to_json(self, k=TOP_K):
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "label": self.label,
            "probability": round(self.probability, 6),
            "top": top_json(self.probabilities, self.class_names, k),
        }


@dataclasses.dataclass
class Segment:
    """Consecutive windows with the same label: [start, end) seconds."""

    start: float
    end: float
    class_id: int
    label: str
    probability: float
    num_windows: int

    def to_json(self):
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "label": self.label,
            "class_id": self.class_id,
            "probability": round(self.probability, 6),
        }


@dataclasses.dataclass
class Timeline:
    """The windows and segments of one video.

    Attributes:
        source: the video path.
        fps: frames per second used for the times.
        window_seconds, stride_seconds: as asked; window_frames and
            stride_frames are them in frames (rounded, at least 1).
        num_frames: frames decoded.
        class_names: the model's class names.
        windows: list of `Window`, in time order.
        segments: list of `Segment`, covering [0, duration).
        complete: False when decoding stopped early (`TimelineError.timeline`).
    """

    source: str
    fps: float
    window_seconds: float
    stride_seconds: float
    window_frames: int
    stride_frames: int
    num_frames: int
    class_names: list
    windows: list
    segments: list
    complete: bool = True

    @property
    def duration(self):
        """Seconds of video decoded."""
        return self.num_frames / self.fps

    def to_json(self, k=TOP_K):
        """The JSON document of `glimpse-predict --timeline --json`: video,
        frame rate, window and stride, "segments" and "windows" (each with its top-k)."""
        return {
            "video": self.source,
            "fps": round(self.fps, 6),
            "frames": self.num_frames,
            "duration": round(self.duration, 3),
            "window": round(self.window_seconds, 6),
            "stride": round(self.stride_seconds, 6),
            "complete": self.complete,
            "segments": [segment.to_json() for segment in self.segments],
            "windows": [window.to_json(k) for window in self.windows],
        }


# === Windows ===


def window_lengths(window, stride, fps, clip_seconds=None, source="video"):
    """Checks the window and stride and converts them to frames.

    Args:
        window: seconds, or None for `clip_seconds`.
        stride: seconds, or None for half the window.
        fps: the video's frames per second.
        clip_seconds: the model's default window (None: unknown).
        source: named in the messages.

    Returns:
        (window_seconds, stride_seconds, window_frames, stride_frames); the
        frame counts are rounded and at least 1.

    Raises:
        TimelineError: naming the bad value, or asking for a window the model does not know.
    """
    if window is None:
        if clip_seconds is None:
            raise TimelineError(
                f"{source}: no window length: the model does not record how long its training videos were "
                "(its dataset family does not know it); pass --window SECONDS (window=)")
        window = clip_seconds
    for name, value in (("window", window), ("fps", fps)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise TimelineError(f"{source}: --{name} must be a positive number of "
                                f"{'seconds' if name == 'window' else 'frames per second'}, got {value!r}")
    if stride is None:
        stride = DEFAULT_STRIDE_FRACTION * window
    if not isinstance(stride, (int, float)) or isinstance(stride, bool) or not stride > 0:
        raise TimelineError(f"{source}: --stride must be a positive number of seconds, got {stride!r}")
    window_frames = max(1, int(round(window * fps)))
    stride_frames = max(1, int(round(stride * fps)))
    return float(window), float(stride), window_frames, stride_frames


class SlidingWindows:
    """Windows of `window_frames` frames every `stride_frames` over an iterable of frames.

    Holds only the last `window_frames` frames. Yields (start_frame, frames)
    with frames a list of `window_frames` frames, for the windows starting at
    0, stride, 2 * stride, ... that fit in the video, then one window ending on
    the last frame when the last regular window does not.

    Attributes:
        frames_seen: frames read from the iterable so far.
    """

    def __init__(self, frames, window_frames, stride_frames):
        self._frames = frames
        self.window_frames = int(window_frames)
        self.stride_frames = int(stride_frames)
        self.frames_seen = 0

    def __iter__(self):
        buffer = collections.deque(maxlen=self.window_frames)
        next_end = self.window_frames
        last_end = 0
        for frame in self._frames:
            buffer.append(frame)
            self.frames_seen += 1
            if self.frames_seen == next_end:
                yield next_end - self.window_frames, list(buffer)
                last_end = next_end
                next_end += self.stride_frames
        if self.frames_seen >= self.window_frames and last_end < self.frames_seen:
            yield self.frames_seen - self.window_frames, list(buffer)


def merge_segments(windows, duration):
    """Consecutive windows with the same label as segments (see the module docstring).

    Args:
        windows: `Window`s in time order.
        duration: seconds, the end of the last segment.

    Returns:
        list of `Segment`.
    """
    groups = []
    for window in windows:
        if groups and groups[-1][-1].class_id == window.class_id:
            groups[-1].append(window)
        else:
            groups.append([window])
    segments = []
    for number, group in enumerate(groups):
        start = 0.0 if number == 0 else 0.5 * (groups[number - 1][-1].centre + group[0].centre)
        end = duration if number == len(groups) - 1 else 0.5 * (group[-1].centre + groups[number + 1][0].centre)
        class_id = group[0].class_id
        segments.append(Segment(
            start=start, end=end, class_id=class_id, label=group[0].label,
            probability=float(np.mean([window.probabilities[class_id] for window in group])),
            num_windows=len(group)))
    return segments


def compute_timeline(classifier, video, *, window=None, stride=None, fps=None):
    """The timeline of a video file or of an array of frames (`Classifier.timeline`).

    Args:
        classifier: a `Classifier`.
        video: a path, or uint8 frames (F, H, W, 3) (then `fps` is required).
        window, stride: seconds (defaults: `classifier.clip_seconds`, half a window).
        fps: frames per second (default: the container's).

    Returns:
        a complete `Timeline`.

    Raises:
        TimelineError: no frame rate, a bad window or stride, a window longer
            than the video, or a decode failure after some windows (with the
            partial timeline attached).
        VideoDecodeError: a video that cannot be opened or fails before its first window.
    """
    from glimpse_keras.data.errors import VideoDecodeError
    from glimpse_keras.data.video import iter_video_frames, probe_video

    side = classifier.frame_side
    if isinstance(video, (str, os.PathLike)):
        source = os.fspath(video)
        if fps is None:
            fps = probe_video(source)["frame_rate"]
            if fps is None:
                raise TimelineError(f"{source}: the container declares no frame rate; pass --fps "
                                    "(fps=) with the video's frames per second")
        frames = iter_video_frames(source, size=(side, side))
    else:
        source = "<frames>"
        if fps is None:
            raise TimelineError("frames given as an array need fps= (their frames per second)")
        frames = iter(classifier.squash_frames(video))
    window, stride, window_frames, stride_frames = window_lengths(
        window, stride, fps, classifier.clip_seconds, source)
    sliding = SlidingWindows(frames, window_frames, stride_frames)
    windows = []

    def timeline(complete=True):
        return Timeline(
            source=source, fps=float(fps), window_seconds=window, stride_seconds=stride,
            window_frames=window_frames, stride_frames=stride_frames, num_frames=sliding.frames_seen,
            class_names=classifier.class_names, windows=windows,
            segments=merge_segments(windows, sliding.frames_seen / fps), complete=complete)

    try:
        for start, window_images in sliding:
            outputs = classifier.classify_frames(window_images)
            windows.append(Window(
                index=len(windows), start_frame=start, end_frame=start + window_frames, fps=float(fps),
                probabilities=outputs["probabilities"], class_names=classifier.class_names))
    except VideoDecodeError as error:
        if not windows:
            raise
        raise TimelineError(f"{error} (the timeline stops after {len(windows)} windows)",
                            timeline(complete=False)) from error
    if sliding.frames_seen < window_frames:
        raise TimelineError(
            f"{source}: the window of {window:g} s ({window_frames} frames at {fps:g} fps) is longer than the "
            f"video ({sliding.frames_seen / fps:.2f} s, {sliding.frames_seen} frames); pass a shorter --window, "
            "or classify the whole video without --timeline")
    return timeline()


# === Output ===


def format_timeline(timeline):
    """The text table of `glimpse-predict --timeline`: a header line, then one line per segment."""
    lines = [
        f"{timeline.source}: {timeline.num_frames} frames at {timeline.fps:g} fps ({timeline.duration:.2f} s); "
        f"{timeline.window_seconds:g} s windows every {timeline.stride_seconds:g} s: "
        f"{len(timeline.windows)} windows, {len(timeline.segments)} segments",
        f"  {'start':>8} {'end':>8}  {'probability':>11}  label",
    ]
    for segment in timeline.segments:
        lines.append(f"  {segment.start:8.2f} {segment.end:8.2f}  {segment.probability:11.1%}  {segment.label}")
    return "\n".join(lines)


def plotted_classes(timeline, top=TOP_K):
    """The classes drawn by `plot_timeline`: those labelling segments (longest
    total time first), then the others by their peak probability, `top` at most."""
    durations = collections.defaultdict(float)
    for segment in timeline.segments:
        durations[segment.class_id] += segment.end - segment.start
    chosen = sorted(durations, key=lambda class_id: -durations[class_id])
    if timeline.windows:
        peaks = np.max([window.probabilities for window in timeline.windows], axis=0)
        chosen += [int(i) for i in np.argsort(-peaks, kind="stable") if int(i) not in durations]
    return chosen[:top]


def plot_timeline(timeline, path, top=TOP_K):
    """Draws the top classes' probabilities over time with the segments shaded; writes a PNG.

    Each class in `plotted_classes` is a line of its windows' probabilities
    at the windows' centres; each segment is shaded in its label's colour
    (grey when the label is not plotted) and named above the plot.

    Returns:
        the matplotlib `Figure` (already written to `path`).

    Raises:
        io_utils.StorageError: `path` cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from glimpse_keras.io_utils import atomic_path

    classes = plotted_classes(timeline, top)
    colours = {class_id: f"C{rank % 10}" for rank, class_id in enumerate(classes)}
    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    centres = [window.centre for window in timeline.windows]
    for class_id in classes:
        axes.plot(centres, [window.probabilities[class_id] for window in timeline.windows], color=colours[class_id],
                  marker=".", label=timeline.class_names[class_id])
    for segment in timeline.segments:
        axes.axvspan(segment.start, segment.end, color=colours.get(segment.class_id, "0.5"), alpha=0.15, lw=0)
        axes.text(0.5 * (segment.start + segment.end), 1.02, segment.label, ha="center", va="bottom", fontsize=7,
                  clip_on=False)
    axes.set_xlim(0, max(timeline.duration, 1e-6))
    axes.set_ylim(0, 1)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("probability")
    axes.set_title(f"{os.path.basename(timeline.source)}: {timeline.window_seconds:g} s windows every "
                   f"{timeline.stride_seconds:g} s", fontsize=9, pad=14)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return figure


def write_timeline_video(timeline, output):
    """Writes the video again at its own size and frame rate with its segment's label on every frame.

    Returns:
        the number of frames written.

    Raises:
        VideoDecodeError: the video cannot be decoded again.
        AnnotatedVideoError: the output cannot be written (names the path).
    """
    from glimpse_keras.data.video import iter_video_frames
    from glimpse_keras.visualize.annotated_video import AnnotatedVideoWriter

    # islice: the frames the timeline saw, without decoding on to a truncation it already reported.
    frames = itertools.islice(iter_video_frames(timeline.source), timeline.num_frames)
    with AnnotatedVideoWriter(output, timeline.fps) as writer:
        for index, frame in enumerate(frames):
            segment = segment_at(timeline, (index + 0.5) / timeline.fps)
            writer.write(frame, f"{segment.label} {segment.probability:.2f}")
    return writer.frames_written


def segment_at(timeline, seconds):
    """The segment holding time `seconds` (the last one for times past its end), or None without segments."""
    for segment in timeline.segments:
        if seconds < segment.end:
            return segment
    return timeline.segments[-1] if timeline.segments else None
