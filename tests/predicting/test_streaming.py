"""`glimpse-predict --stream` / `Classifier.stream`: files at an accelerated rate, HTTP, drops counted, errors."""

import contextlib
import http.server
import json
import threading
import time

import numpy as np
import pytest

from glimpse_keras import streaming
from glimpse_keras.cli import predict
from glimpse_keras.data.video import read_video
from tests.data.test_video import noisy_frames, write_avi
from tests.predicting.conftest import CLASS_NAMES, FPS


def covered_frames(results):
    """The frames that some classified window contained."""
    covered = set()
    for result in results:
        covered.update(range(result.start_frame, result.end_frame))
    return covered


def assert_accounted(results, stats):
    """Every frame read was classified in some window or counted as dropped; nothing else."""
    assert stats.frames_read == 90
    assert len(covered_frames(results)) + stats.frames_dropped == stats.frames_read
    assert stats.windows == len(results) and len(stats.latencies) == len(results)


def in_colour_order(results):
    """The labels change only forwards: red, then green, then blue (some may be missed)."""
    order = [CLASS_NAMES.index(result.label) for result in results]
    return order == sorted(order)


@contextlib.contextmanager
def http_server(data):
    """Serves `data` at /full.avi; only its first half at /cut.avi (the connection then closes) and
    at /stall.avi (the connection then stays open, silent, until the server shuts down)."""
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "video/x-msvideo")
            self.end_headers()
            body = data if self.path.startswith("/full") else data[: len(data) // 2]
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)
                self.wfile.flush()
                if self.path.startswith("/stall"):
                    stop.wait(300)
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_rate_zero_classifies_every_timeline_window(colour_run, colour_classifier):
    stream = colour_classifier.stream(colour_run.video, window=1.0, stride=0.5, rate=0)
    results = list(stream)
    timeline = colour_classifier.timeline(colour_run.video, window=1.0, stride=0.5)
    assert [(r.start_frame, r.end_frame) for r in results] == [(w.start_frame, w.end_frame) for w in timeline.windows]
    np.testing.assert_allclose([r.probabilities for r in results], [w.probabilities for w in timeline.windows],
                               atol=1e-6)
    np.testing.assert_allclose([r.time for r in results], [w.end for w in timeline.windows], atol=1e-6)
    stats = stream.stats
    assert (stats.frames_dropped, stats.windows_skipped, stats.ended) == (0, 0, "end of source")
    assert stats.kept_up and stats.source_seconds == pytest.approx(9.0)
    assert_accounted(results, stats)


def test_cli_stream_of_a_file_at_an_accelerated_rate(colour_run, tmp_path, capsys):
    output = str(tmp_path / "live.mp4")
    code = predict.main(["--stream", colour_run.video, "--run", colour_run.run, "--window", "1", "--stride", "0.5",
                         "--rate", "4", "--json", "--output-video", output])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    *results, summary = lines
    summary = summary["summary"]
    assert summary["frames_read"] == 90 and summary["ended"] == "end of source"
    assert summary["windows"] == len(results) >= 2
    assert summary["kept_up"] == (summary["frames_dropped"] == 0 and summary["windows_skipped"] == 0
                                  and summary["reader_lag"] <= 0.5)
    times = [result["time"] for result in results]
    assert times == sorted(times) and times[-1] == pytest.approx(9.0)
    assert all(result["latency"] >= 0 and result["label"] in CLASS_NAMES for result in results)
    order = [CLASS_NAMES.index(result["label"]) for result in results]
    assert order == sorted(order) and order[-1] == 2
    written = read_video(output)
    assert written.shape == (90, 96, 128, 3)  # every frame, at its own size


class SlowClassifier:
    """The colour classifier taking `delay` more seconds per window: a model that cannot keep up."""

    def __init__(self, classifier, delay):
        self._classifier, self.delay = classifier, delay

    def __getattr__(self, name):
        return getattr(self._classifier, name)

    def classify_frames(self, frames):
        time.sleep(self.delay)
        return self._classifier.classify_frames(frames)


def test_a_model_that_cannot_keep_up_drops_frames_and_says_so(colour_run, colour_classifier):
    from glimpse_keras.streaming import Stream

    # 9 s of video read in 0.9 s, 0.5 s strides every 0.05 s, 0.3 s per window.
    stream = Stream(SlowClassifier(colour_classifier, 0.3), colour_run.video, window=1.0, stride=0.5, rate=10)
    results = list(stream)
    stats = stream.stats
    assert stats.frames_dropped > 0 and stats.windows_skipped > 0 and not stats.kept_up
    assert_accounted(results, stats)
    assert f"could NOT keep up: {stats.frames_dropped} frames dropped (never classified)" in stats.summary()
    assert in_colour_order(results)
    # The last frames are always classified: the end of the source gives one last window.
    assert results[-1].end_frame == 90


def test_http_source_is_read_as_it_arrives(colour_run, colour_classifier):
    data = open(colour_run.video, "rb").read()
    with http_server(data) as url:
        stream = colour_classifier.stream(f"{url}/full.avi", window=1.0, stride=0.5)
        results = list(stream)
    assert stream.live and stream.stats.ended == "end of source"
    assert results and in_colour_order(results)
    assert_accounted(results, stream.stats)


def test_a_stream_that_stops_is_named_and_keeps_its_output(colour_run, tmp_path, capsys):
    # Incompressible frames, so that half the bytes hold about half the frames (FFmpeg reads a
    # small file's first half whole while probing it).
    source = tmp_path / "noise.avi"
    write_avi(source, noisy_frames(90), rate=FPS)
    data = source.read_bytes()
    output = str(tmp_path / "cut.mp4")
    with http_server(data) as url:
        code = predict.main(["--stream", f"{url}/cut.avi", "--run", colour_run.run, "--window", "1",
                             "--output-video", output])
    captured = capsys.readouterr()
    assert code == 1
    assert f"error: stream {url}/cut.avi stopped after" in captured.err
    read = int(captured.err.split("stopped after ")[1].split(" frames")[0])
    assert 10 <= read < 90
    *predictions, summary, verdict = captured.out.splitlines()
    assert predictions and all("(window " in line for line in predictions)  # the predictions made before
    assert f": {read} frames" in summary and "ended: stopped" in summary
    # Over HTTP the file arrives faster than real time: the frames the model had no time for are counted.
    assert verdict.startswith("kept up") or "frames dropped (never classified)" in verdict
    assert len(read_video(output)) == read  # the annotated stream up to the stop


def test_a_silent_source_stops_after_the_timeout(colour_run, colour_classifier, tmp_path):
    source = tmp_path / "noise.avi"
    write_avi(source, noisy_frames(90), rate=FPS)
    with http_server(source.read_bytes()) as url:
        stream = colour_classifier.stream(f"{url}/stall.avi", window=1.0, timeout=1.5)
        with pytest.raises(streaming.StreamError, match=r"stopped after \d+ frames .*: no data for 1.5 s"):
            for _ in stream:
                pass
    assert 10 <= stream.stats.frames_read < 90 and stream.stats.ended == "stopped"


def test_sources_that_cannot_be_read_are_named(colour_run, colour_classifier, tmp_path, capsys):
    with pytest.raises(streaming.StreamError, match="cannot open stream .*missing.mp4: no such file"):
        colour_classifier.stream(str(tmp_path / "missing.mp4"))
    with pytest.raises(streaming.StreamError, match=r"cannot open stream rtsp://127.0.0.1:9/live: .*refused"):
        colour_classifier.stream("rtsp://127.0.0.1:9/live", timeout=2)
    stream = colour_classifier.stream(colour_run.video, window=20.0, rate=0)
    with pytest.raises(streaming.StreamError, match=r"ended after 90 frames \(9.00 s\), before one window of 20 s"):
        list(stream)
    assert predict.main(["--stream", "/dev/video9", "--run", colour_run.run]) == 1
    assert "cannot open stream /dev/video9" in capsys.readouterr().err
    assert streaming.describe_source("0")[:2] == ("/dev/video0", "v4l2")
    assert streaming.describe_source("rtsp://cam/1")[2] == {"rtsp_transport": "tcp"}
    for argv, message in [
        ([colour_run.video], "--stream SOURCE takes no VIDEO argument"),
        (["--rate", "-1"], "--rate: expected a number >= 0, got -1"),
    ]:
        assert predict.main(["--stream", colour_run.video, "--run", colour_run.run] + argv) == 2
        assert message in capsys.readouterr().err
    assert predict.main([colour_run.video, "--run", colour_run.run, "--rate", "2"]) == 2
    assert "--rate and --duration apply to --stream" in capsys.readouterr().err


def test_duration_stops_the_stream(colour_run, colour_classifier):
    stream = colour_classifier.stream(colour_run.video, window=1.0, stride=0.5, rate=0, duration=4.0)
    results = list(stream)
    assert stream.stats.frames_read == 40 and stream.stats.ended == "duration"
    assert results[-1].end_frame == 40


def test_ctrl_c_ends_the_stream_with_its_summary_and_video(colour_run, tmp_path, monkeypatch, capsys):
    from glimpse_keras.classifier import Classifier

    classify = Classifier.classify_frames
    calls = []

    def interrupted_on_the_fourth_window(self, frames):
        calls.append(len(frames))
        if len(calls) == 5:  # the warm-up, then three windows
            raise KeyboardInterrupt
        return classify(self, frames)

    monkeypatch.setattr(Classifier, "classify_frames", interrupted_on_the_fourth_window)
    output = str(tmp_path / "interrupted.mp4")
    code = predict.main(["--stream", colour_run.video, "--run", colour_run.run, "--window", "1", "--stride", "0.5",
                         "--rate", "0", "--json", "--output-video", output])
    *results, summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and len(results) == 3
    assert summary["summary"]["ended"] == "interrupted" and summary["summary"]["windows"] == 3
    written = len(read_video(output))
    assert 20 <= written == summary["summary"]["frames_read"] <= 90
