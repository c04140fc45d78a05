"""`glimpse-predict --timeline` / `Classifier.timeline`: windows, segments, bounded memory, plot, errors."""

import json
import os
import types
import weakref

import av
import numpy as np
import pytest
from PIL import Image

from glimpse_keras.cli import predict
from glimpse_keras import timeline as timeline_lib
from glimpse_keras.data.errors import VideoDecodeError
from glimpse_keras.data.video import frame_rate_of, probe_video, read_video
from tests.data.test_video import write_avi
from tests.predicting.conftest import CLASS_NAMES, FPS, SECONDS_PER_COLOUR, colour_frames

class AliveFrames:
    """Counts the frames still referenced somewhere (weak references to each frame handed out)."""

    def __init__(self):
        self.references = []

    def add(self, frame):
        self.references.append(weakref.ref(frame))
        return frame

    def __len__(self):
        return sum(reference() is not None for reference in self.references)


# === Windows and segments, by hand ===


@pytest.mark.parametrize(
    "count, window, stride, starts",
    [
        (23, 10, 5, [0, 5, 10, 13]),  # regular windows end at 10, 15, 20; the tail ends on frame 23
        (20, 10, 5, [0, 5, 10]),  # the last regular window reaches the end: no tail
        (23, 4, 10, [0, 10, 19]),  # stride > window: frames between windows are skipped, the tail is kept
        (10, 10, 3, [0]),
        (9, 10, 3, []),  # shorter than a window: nothing (the caller names the error)
    ],
)
def test_sliding_windows_place_windows_and_the_tail(count, window, stride, starts):
    sliding = timeline_lib.SlidingWindows(iter(range(count)), window, stride)
    windows = list(sliding)
    assert [start for start, _ in windows] == starts
    assert all(frames == list(range(start, start + window)) for start, frames in windows)
    assert sliding.frames_seen == count


def test_sliding_windows_hold_one_window_of_frames():
    alive = AliveFrames()

    def frames():
        for index in range(500):
            frame = np.full((4, 4, 3), index % 256, np.uint8)
            alive.add(frame)
            yield frame

    peak = 0
    for _, window_frames in timeline_lib.SlidingWindows(frames(), 12, 5):
        del window_frames
        peak = max(peak, len(alive))
    # The buffer holds 12 frames; the generator's current frame may be one more.
    assert 12 <= peak <= 13


def make_window(index, start, end, probabilities, fps=10.0):
    return timeline_lib.Window(index=index, start_frame=start, end_frame=end, fps=fps,
                               probabilities=np.asarray(probabilities, np.float64), class_names=["a", "b", "c"])


def test_segments_split_halfway_between_window_centres():
    # Windows of 1 s every 0.5 s (fps 10); centres 0.5, 1.0, 1.5, 2.0, 2.5.
    windows = [make_window(0, 0, 10, [0.8, 0.1, 0.1]), make_window(1, 5, 15, [0.6, 0.3, 0.1]),
               make_window(2, 10, 20, [0.2, 0.7, 0.1]), make_window(3, 15, 25, [0.1, 0.5, 0.4]),
               make_window(4, 20, 30, [0.1, 0.1, 0.8])]
    segments = timeline_lib.merge_segments(windows, duration=3.2)
    assert [(s.label, s.num_windows) for s in segments] == [("a", 2), ("b", 2), ("c", 1)]
    np.testing.assert_allclose([(s.start, s.end) for s in segments], [(0, 1.25), (1.25, 2.25), (2.25, 3.2)])
    np.testing.assert_allclose([s.probability for s in segments], [0.7, 0.6, 0.8])
    assert timeline_lib.segment_at(types.SimpleNamespace(segments=segments), 1.3).label == "b"


def test_window_lengths_round_to_frames_and_name_bad_values():
    assert timeline_lib.window_lengths(None, None, 30.0, 2.33) == (2.33, 1.165, 70, 35)
    assert timeline_lib.window_lengths(1.0, 0.01, 10.0) == (1.0, 0.01, 10, 1)  # at least one frame
    with pytest.raises(timeline_lib.TimelineError, match="pass --window SECONDS"):
        timeline_lib.window_lengths(None, None, 30.0, None, "v.mp4")
    with pytest.raises(timeline_lib.TimelineError, match="--stride must be a positive number of seconds, got -1"):
        timeline_lib.window_lengths(2.0, -1, 30.0)


def test_frame_rate_comes_from_the_container_or_its_time_stamps(tmp_path):
    # MPEG-TS declares no average rate; FFmpeg's estimate from the time stamps is used.
    path = str(tmp_path / "clip.ts")
    with av.open(path, "w", format="mpegts") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for image in colour_frames(0, 6, seed=0, height=48, width=64):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(path) as container:
        assert container.streams.video[0].average_rate is None
    assert probe_video(path)["frame_rate"] == 12
    undeclared = types.SimpleNamespace(average_rate=None, guessed_rate=None)
    assert frame_rate_of(undeclared) is None


# === The colour model: a real timeline ===


def test_timeline_finds_the_joins_of_three_videos(colour_run, colour_classifier):
    timeline = colour_classifier.timeline(colour_run.video, window=1.0, stride=0.5)
    assert timeline.fps == FPS and timeline.num_frames == 90 and timeline.complete
    assert (timeline.window_frames, timeline.stride_frames) == (10, 5)
    assert [w.start_frame for w in timeline.windows] == list(range(0, 81, 5))
    assert [segment.label for segment in timeline.segments] == CLASS_NAMES
    boundaries = [segment.end for segment in timeline.segments[:-1]]
    # Within one window of the joins (3 s and 6 s).
    np.testing.assert_array_less(np.abs(np.subtract(boundaries, colour_run.joins)), timeline.window_seconds)
    assert timeline.segments[0].start == 0 and timeline.segments[-1].end == pytest.approx(9.0)
    # A window inside one video gets that video's colour; a window across a join is less sure.
    for window in timeline.windows:
        colours = {int(frame // (SECONDS_PER_COLOUR * FPS)) for frame in (window.start_frame, window.end_frame - 1)}
        if len(colours) == 1:
            assert window.class_id == colours.pop() and window.probability > 0.8
    across = [w for w in timeline.windows if w.start_frame < 30 < w.end_frame]
    assert across and all(w.probability < 0.95 for w in across)


def test_the_default_window_is_the_length_of_the_training_videos(colour_run, colour_classifier):
    # The run's dataset is NTU: ~70 frames at ~30 fps.
    assert colour_classifier.clip_seconds == 2.33
    timeline = colour_classifier.timeline(colour_run.video)
    assert (timeline.window_frames, timeline.stride_frames) == (23, 12)
    assert [w.start_frame for w in timeline.windows] == [0, 12, 24, 36, 48, 60, 67]  # 67: the tail window
    assert [segment.label for segment in timeline.segments] == CLASS_NAMES
    boundaries = [segment.end for segment in timeline.segments[:-1]]
    np.testing.assert_array_less(np.abs(np.subtract(boundaries, colour_run.joins)), timeline.window_seconds)


def test_timeline_of_frames_equals_the_file_s(colour_run, colour_classifier):
    from_file = colour_classifier.timeline(colour_run.video, window=1.0, stride=0.5)
    frames = read_video(colour_run.video)
    from_frames = colour_classifier.timeline(frames, window=1.0, stride=0.5, fps=FPS)
    np.testing.assert_allclose([w.probabilities for w in from_frames.windows],
                               [w.probabilities for w in from_file.windows], atol=1e-6)
    with pytest.raises(timeline_lib.TimelineError, match="need fps="):
        colour_classifier.timeline(frames)


def test_decoding_keeps_one_window_in_memory(colour_run, colour_classifier, monkeypatch):
    from glimpse_keras.data import video

    alive = AliveFrames()
    decode = video.iter_video_frames

    def tracked(*args, **kwargs):
        for frame in decode(*args, **kwargs):
            alive.add(frame)
            yield frame

    peaks = []
    classify = colour_classifier.classify_frames

    def counting(frames):
        peaks.append(len(alive))
        return classify(frames)

    monkeypatch.setattr(video, "iter_video_frames", tracked)
    monkeypatch.setattr(colour_classifier, "classify_frames", counting)
    timeline = colour_classifier.timeline(colour_run.video, window=1.0, stride=0.5)
    assert len(peaks) == len(timeline.windows) == 17
    assert max(peaks) <= 10 + 1  # one window of frames (+ the one being decoded), not the 90 of the video


def test_cli_timeline_json_and_text(colour_run, colour_classifier, capsys):
    args = [colour_run.video, "--run", colour_run.run, "--timeline", "--window", "1", "--stride", "0.5"]
    assert predict.main(args + ["--json", "--top", "2"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["errors"] == [] and len(document["timelines"]) == 1
    (timeline,) = document["timelines"]
    assert timeline["video"] == colour_run.video and timeline["fps"] == 10 and timeline["frames"] == 90
    assert [s["label"] for s in timeline["segments"]] == CLASS_NAMES
    assert set(timeline["segments"][0]) >= {"start", "end", "label", "probability"}
    # The same windows and probabilities as the Python API.
    expected = colour_classifier.timeline(colour_run.video, window=1.0, stride=0.5)
    assert [(w["start"], w["end"]) for w in timeline["windows"]] == [(w.start, w.end) for w in expected.windows]
    for window, reference in zip(timeline["windows"], expected.windows):
        assert len(window["top"]) == 2 and window["label"] == reference.label
        assert window["probability"] == pytest.approx(reference.probability, abs=1e-6)
        for entry in window["top"]:
            assert entry["probability"] == pytest.approx(reference.probabilities[entry["class_id"]], abs=1e-6)
    assert predict.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{colour_run.video}: 90 frames at 10 fps (9.00 s); 1 s windows every 0.5 s: "
                               "17 windows, 3 segments")
    assert [line.split("%")[-1].strip() for line in lines[2:5]] == CLASS_NAMES


def test_plot_shades_the_segments_and_draws_the_top_classes(colour_run, colour_classifier, tmp_path):
    timeline = colour_classifier.timeline(colour_run.video, window=1.0, stride=0.5)
    path = str(tmp_path / "timeline.png")
    figure = timeline_lib.plot_timeline(timeline, path, top=2)
    axes = figure.axes[0]
    # The segment classes come first (here all three label a segment: the top 2 by duration are drawn).
    assert [line.get_label() for line in axes.lines] == [CLASS_NAMES[i] for i in
                                                         timeline_lib.plotted_classes(timeline, 2)]
    assert len(axes.lines) == 2
    np.testing.assert_allclose(axes.lines[0].get_xdata(), [w.centre for w in timeline.windows])
    spans = [patch.get_x() for patch in axes.patches], [patch.get_x() + patch.get_width() for patch in axes.patches]
    np.testing.assert_allclose(np.transpose(spans), [(s.start, s.end) for s in timeline.segments])
    assert Image.open(path).size == (1000, 400)


@pytest.mark.slow
def test_cli_plot_and_annotated_video_for_several_videos(colour_run, tmp_path, capsys):
    short = str(tmp_path / "short.avi")
    write_avi(short, list(colour_frames(1, 8, seed=3)), rate=FPS)  # 0.8 s: shorter than a window
    plots, videos = tmp_path / "plots", tmp_path / "videos"
    code = predict.main([colour_run.video, short, "--run", colour_run.run, "--timeline", "--window", "1",
                         "--plot", str(plots), "--output-video", str(videos), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    document = json.loads(captured.out)
    assert [t["video"] for t in document["timelines"]] == [colour_run.video]
    (error,) = document["errors"]
    assert error["video"] == short
    assert "the window of 1 s (10 frames at 10 fps) is longer than the video (0.80 s, 8 frames)" in error["error"]
    assert os.listdir(plots) == ["joined_timeline.png"] and os.listdir(videos) == ["joined_predicted.mp4"]
    written = read_video(str(videos / "joined_predicted.mp4"))
    assert written.shape == (90, 96, 128, 3)
    assert written[:, 2:6, 1:4].mean() < 60  # the label banner on every frame


def test_a_video_that_stops_decoding_keeps_its_windows(colour_run, colour_classifier, tmp_path, capsys):
    data = open(colour_run.video, "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    with pytest.raises(timeline_lib.TimelineError, match="truncated") as caught:
        colour_classifier.timeline(str(cut), window=1.0, stride=0.5)
    partial = caught.value.timeline
    assert partial is not None and not partial.complete and 0 < partial.num_frames < 90
    assert partial.windows and partial.segments[0].label == CLASS_NAMES[0]
    assert predict.main([str(cut), "--run", colour_run.run, "--timeline", "--window", "1"]) == 1
    captured = capsys.readouterr()
    assert "truncated" in captured.err and f"{cut}: {partial.num_frames} frames at 10 fps" in captured.out


def test_errors_name_the_video_and_the_value(colour_run, colour_classifier, monkeypatch, tmp_path, capsys):
    from glimpse_keras.data import video

    with pytest.raises(VideoDecodeError, match="file not found"):
        colour_classifier.timeline(str(tmp_path / "missing.mp4"), window=1.0)
    real_probe = video.probe_video
    monkeypatch.setattr(video, "probe_video", lambda path: dict(real_probe(path), frame_rate=None))
    with pytest.raises(timeline_lib.TimelineError, match="declares no frame rate; pass --fps"):
        colour_classifier.timeline(colour_run.video, window=1.0)
    assert colour_classifier.timeline(colour_run.video, window=1.0, fps=5.0).duration == pytest.approx(18.0)
    monkeypatch.undo()
    for argv, message in [
        (["--window", "1"], "--window apply to --timeline and --stream"),
        (["--timeline", "--stride", "0"], "--stride: expected a positive number, got 0"),
        (["--timeline", "--plot", "out.svg"], "--plot out.svg: expected a file name ending in .png"),
        (["--plot", "p.png"], "--plot applies to --timeline"),
    ]:
        assert predict.main([colour_run.video, "--run", colour_run.run] + argv) == 2
        assert message in capsys.readouterr().err
