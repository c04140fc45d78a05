"""The Python API of a trained model: name the action in a video, a long recording or a live stream.

    from glimpse_keras import Classifier

    classifier = Classifier.from_run("runs/demo")      # or Classifier.from_saved_model("models/glimpse_clouds/1")
    prediction = classifier.predict("clip.mp4")        # the whole video, as evaluation classifies it
    print(prediction.label, prediction.probability)    # top-1 name and probability; .top(5) for more
    timeline = classifier.timeline("session.mp4")      # when each action happens (sliding windows)
    for result in classifier.stream("rtsp://camera/1"):  # what is happening now
        print(result.time, result.label, result.probability)

Every video is sampled exactly as the test split is evaluated: each frame is
squashed with area interpolation to stored_size x stored_size (as the
converter stores frames; `data.video.resize_frame`), K clips of T frames are
taken at the fixed bin offsets of `video_ops.test_frame_indices`, each frame
is centre-cropped to image_size x image_size (`video_ops.preprocess_frames`,
the one preprocessing shared by the input pipeline, the serving graph and
this module) and the raw logits of the K clips are averaged before the
softmax. A window of a timeline or a stream is classified the same way, as if
it were a whole video. T, S, the stored size, K, the class names and the
duration of the training videos come from the run's config.yaml
(`from_run`) or the SavedModel's serving contract (`from_saved_model`).

`glimpse-predict` (`glimpse_keras/cli/predict.py`) is the command line over this
class; `timeline.py` and `streaming.py` hold the sliding windows and the live
loop.
"""

import dataclasses
import os

import numpy as np

from glimpse_keras.class_probabilities import TOP_K, ClassifierError, ClassProbabilities, top_json


@dataclasses.dataclass
class Prediction(ClassProbabilities):
    """The classification of one video.

    Attributes:
        source: the video path ("<frames>" for an array).
        probabilities: float (classes,), softmax of the clip-averaged logits.
        class_names: the model's class names (len == classes).
        locations: float (K, T, G, 4) glimpse [x, y, s_x, s_y] in [-1, 1] of
            each clip's centre crop (zeros for the global variants).
        frame_indices: int (K, T), the decoded frames each clip used.
        num_video_frames: frames decoded from the file.
        boxes: None, or (when asked) a list of dicts "frame", "glimpse" and
            "box" [x0, y0, x1, y1]: inclusive pixel corners of each glimpse on
            the video's own frames (`visualize.drawing.location_to_box`) for
            every frame a clip sampled (the first clip that sampled it).
    """

    source: str
    probabilities: np.ndarray
    class_names: list
    locations: np.ndarray
    frame_indices: np.ndarray
    num_video_frames: int
    boxes: list = None

    def to_json(self, k=TOP_K):
        """A JSON-serialisable dict: video, frames, clips, top-k list (and boxes when computed)."""
        document = {
            "video": self.source,
            "frames": int(self.num_video_frames),
            "clips": int(self.frame_indices.shape[0]),
            "top": top_json(self.probabilities, self.class_names, k),
        }
        if self.boxes is not None:
            document["boxes"] = self.boxes
        return document


# === Clip sampling (as evaluation) ===


def sample_clips(frames, num_frames, image_size, num_clips, stored_size=None):
    """The K evaluation clips of a decoded video.

    Args:
        frames: uint8 (F, H, W, 3), already squashed to the stored size.
        num_frames: T, frames per clip.
        image_size: S, side of the centre crop.
        num_clips: K.
        stored_size: the side the model's data were stored at (default: the
            frames' own height, i.e. frames already squashed to it).

    Returns:
        (clips uint8 (K, T, S, S, 3), frame_indices int (K, T)); clip k takes
        frame floor((t + (k + 0.5) / K) * F / T) of bin t
        (`video_ops.test_frame_indices`), so frames repeat when F < T; each
        frame is the evaluation view of `video_ops.preprocess_frames` (the
        one preprocessing shared with the input pipeline and the serving graph).
    """
    from glimpse_keras.data import video_ops

    indices = video_ops.test_frame_indices(len(frames), int(num_frames), int(num_clips)).numpy()
    chosen = np.stack([frames[index] for index in indices.reshape(-1)])
    view = video_ops.preprocess_frames(chosen, image_size=int(image_size),
                                       stored_size=int(stored_size or chosen.shape[1]))
    clips = np.clip(np.round(np.asarray(view)), 0, 255).astype(np.uint8)
    clips = clips.reshape(indices.shape + clips.shape[1:])
    return np.ascontiguousarray(clips), indices.astype(np.int64)


def softmax(logits):
    """Softmax of a 1-D array of logits, in float64."""
    logits = np.asarray(logits, np.float64)
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


# === Predictors: one model, two ways of loading it ===


class RunPredictor:
    """The final (or chosen) model of a training run, loaded as `evaluate.py` loads it.

    Args:
        run_dir: a run folder written by train.py (config.yaml + <stage>/final.weights.h5).
        stage: stage name (default: the last).
        weights: weights file (default: the stage's final weights).
        clips: K clips per video (default: the config's data.clips_per_video).
        precision: None (the process's Keras dtype policy, float32 unless
            set) or a policy name such as "mixed_bfloat16" to build the model
            under.

    Raises:
        glimpse_keras.errors.TrainingError: a missing or unreadable run file.
    """

    def __init__(self, run_dir, stage=None, weights=None, clips=None, precision=None):
        import keras

        from glimpse_keras import runs
        from glimpse_keras.backends import compile_forward
        from glimpse_keras.models.folding import fold_model_batch_norm

        previous = keras.mixed_precision.global_policy().name
        if precision is not None:
            keras.mixed_precision.set_global_policy(precision)
        try:
            model, experiment = runs.load_run(run_dir, stage, weights)
            if not model.backbone.fold_batch_norm:
                model = fold_model_batch_norm(model)  # as `evaluation.collect_logits`
        finally:
            keras.mixed_precision.set_global_policy(previous)
        # The run's serving settings, as export.py writes them into the
        # SavedModel's contract.
        settings = experiment.serving_settings(clips=clips)
        self.num_frames = settings["num_frames"]
        self.image_size = settings["image_size"]
        self.stored_size = settings["stored_size"]
        self.clips_per_video = settings["clips_per_video"]
        self.class_names = list(settings["class_names"])
        self.clip_seconds = settings["clip_seconds"]
        self.path = os.fspath(run_dir)

        def forward(video):
            outputs = model(video, training=False)
            return {"logits": outputs["logits"], "locations": outputs["locations"]}

        self._forward = compile_forward(forward, model)

    def __call__(self, frames):
        """Classifies stored-size frames (F, stored, stored, 3) as one video.

        Args:
            frames: uint8 array or sequence of F >= 1 frames.

        Returns:
            dict "probabilities" (classes,), "locations" (K, T, G, 4), "frame_indices" (K, T).
        """
        clips, indices = sample_clips(frames, self.num_frames, self.image_size, self.clips_per_video,
                                      stored_size=self.stored_size)
        outputs = self._forward(clips[None])
        return {
            "probabilities": softmax(np.asarray(outputs["logits"])[0]),
            "locations": np.asarray(outputs["locations"], np.float32)[0],
            "frame_indices": indices,
        }


class SavedModelPredictor:
    """A SavedModel written by `export.py`, called through its `whole_video` signature.

    Args:
        saved_model_dir: the version folder (holds saved_model.pb and
            assets.extra/serving_contract.json); a TF Serving base folder
            holding numbered versions is accepted too (the newest is used).
        clips: must be None or the K the model was exported with (K is part
            of the exported graph).

    Raises:
        ClassifierError: no SavedModel there, or a K that the graph cannot use.
    """

    def __init__(self, saved_model_dir, clips=None):
        import tensorflow as tf

        from glimpse_keras import export

        saved_model_dir = os.fspath(saved_model_dir)
        if not os.path.exists(os.path.join(saved_model_dir, "saved_model.pb")):
            versions = export.existing_versions(saved_model_dir)
            if not versions:
                raise ClassifierError(
                    f"--saved-model {saved_model_dir}: no saved_model.pb there nor a numbered version folder "
                    "(expected the folder written by export.py, e.g. models/glimpse_clouds/1)"
                )
            saved_model_dir = os.path.join(saved_model_dir, str(versions[-1]))
        try:
            contract = export.read_serving_contract(saved_model_dir)
        except export.ExportError as error:
            raise ClassifierError(f"--saved-model {saved_model_dir}: {error}") from error
        self.num_frames = int(contract["num_frames"])
        self.image_size = int(contract["image_size"])
        self.stored_size = contract.get("stored_size")
        self.clips_per_video = int(contract["clips_per_video"])
        self.class_names = [str(name) for name in contract["class_names"]]
        self.clip_seconds = contract.get("clip_seconds")  # absent from exports older than the timeline
        if clips is not None and clips != self.clips_per_video:
            raise ClassifierError(
                f"--clips {clips}: the SavedModel {saved_model_dir} averages {self.clips_per_video} clips "
                "per video (fixed at export; export again with --clips to change it)"
            )
        try:
            loaded = tf.saved_model.load(saved_model_dir)
            self._signature = loaded.signatures[export.WHOLE_VIDEO_SIGNATURE]
        except (KeyError, OSError, ValueError, tf.errors.OpError) as error:  # OpError: damaged variables
            raise ClassifierError(
                f"--saved-model {saved_model_dir}: cannot load its whole_video signature: {error}") from error
        self._loaded = loaded  # keeps the signature's variables alive
        self.path = saved_model_dir

    def __call__(self, frames):
        """Classifies frames (F, H, W, 3); see `RunPredictor.__call__`."""
        import tensorflow as tf

        outputs = self._signature(video=tf.constant(np.asarray(frames), tf.uint8))
        return {
            "probabilities": np.asarray(outputs["probabilities"], np.float64)[0],
            "locations": np.asarray(outputs["locations"], np.float32)[0],
            "frame_indices": np.asarray(outputs["frame_indices"], np.int64)[0],
        }


def predict_video(predictor, path):
    """Decodes one video and classifies it.

    Frames are squashed to stored_size (image_size without one) with area
    interpolation while decoding, as the converter does.

    Returns:
        Prediction.

    Raises:
        glimpse_keras.data.errors.VideoDecodeError: naming the file and the reason.
    """
    from glimpse_keras.data.video import read_video

    side = predictor.stored_size or predictor.image_size
    frames = read_video(path, size=(side, side))
    outputs = predictor(frames)
    return Prediction(
        source=os.fspath(path),
        probabilities=outputs["probabilities"],
        class_names=predictor.class_names,
        locations=outputs["locations"],
        frame_indices=outputs["frame_indices"],
        num_video_frames=len(frames),
    )


# === The API ===


class Classifier:
    """A trained Glimpse Clouds model that names the action in videos, long recordings and live streams.

    Build one with `Classifier.from_run` or `Classifier.from_saved_model`;
    both give the same probabilities (up to float rounding). The command
    line `glimpse-predict` is a thin layer over this class.

    Args:
        predictor: a `RunPredictor` or `SavedModelPredictor` (or any callable
            with their attributes and `__call__(frames) -> dict`).

    Attributes:
        class_names: list of str, index = model output.
        num_frames: T, frames per clip.
        image_size: S, side of the model input.
        stored_size: the side frames are squashed to before the centre crop
            (None: image_size).
        clips_per_video: K, clips averaged per video or window.
        clip_seconds: the typical duration of the training videos in seconds
            (the default window of `timeline` and `stream`), or None when the
            dataset family does not know it.
        source: the run or SavedModel folder.

    Example:
        >>> classifier = Classifier.from_run("runs/demo")
        >>> classifier.predict("clip.mp4").top(3)  # [(class_id, name, probability), ...], best first
    """

    def __init__(self, predictor):
        self._predictor = predictor
        self.class_names = list(predictor.class_names)
        self.num_frames = int(predictor.num_frames)
        self.image_size = int(predictor.image_size)
        self.stored_size = predictor.stored_size
        self.clips_per_video = int(predictor.clips_per_video)
        self.clip_seconds = getattr(predictor, "clip_seconds", None)
        self.source = getattr(predictor, "path", None)

    @classmethod
    def from_run(cls, run_dir, *, stage=None, weights=None, clips=None, precision=None):
        """The model of a training run (config.yaml + weights), BatchNorm folded.

        Args:
            run_dir: a folder written by train.py.
            stage: stage name (default: the last).
            weights: weights file (default: the stage's final weights).
            clips: K clips per video (default: the run's data.clips_per_video).
            precision: None (current Keras policy) or e.g. "mixed_bfloat16".

        Raises:
            glimpse_keras.errors.TrainingError: a missing or unreadable run file.
        """
        return cls(RunPredictor(run_dir, stage, weights, clips, precision))

    @classmethod
    def from_saved_model(cls, saved_model_dir, *, clips=None):
        """An export of `export.py` (a version folder, or its base folder for the newest version).

        Raises:
            ClassifierError: no SavedModel there, or `clips` other than the exported K.
        """
        return cls(SavedModelPredictor(saved_model_dir, clips))

    @property
    def frame_side(self):
        """The side frames are squashed to when decoded (the stored size, else image_size)."""
        return int(self.stored_size or self.image_size)

    def classify_frames(self, frames):
        """Classifies frames already squashed to `frame_side` as one video (or one window).

        Args:
            frames: uint8 (F, side, side, 3) or a sequence of F >= 1 such frames.

        Returns:
            dict "probabilities" float64 (classes,), "locations" (K, T, G, 4),
            "frame_indices" int (K, T) into `frames`.
        """
        return self._predictor(frames)

    def squash_frames(self, frames):
        """Frames of any size squashed to `frame_side` as decoding does (uint8 (F, side, side, 3))."""
        from glimpse_keras.data.video import resize_frame

        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
            raise ClassifierError(
                f"frames must be uint8 (frames, height, width, 3) with at least one frame, "
                f"received {frames.dtype} {frames.shape}")
        side = self.frame_side
        return np.stack([resize_frame(frame, (side, side)) for frame in frames])

    def predict(self, video, *, boxes=False):
        """Classifies a whole video as evaluation does.

        Args:
            video: a video file path, or uint8 frames (F, H, W, 3) RGB of any size.
            boxes: also compute the glimpse boxes in pixels of the video's
                own frames (`Prediction.boxes`).

        Returns:
            `Prediction`.

        Raises:
            VideoDecodeError: a file that cannot be decoded (naming it and why).
            ClassifierError: frames of the wrong type or shape.
        """
        if isinstance(video, (str, os.PathLike)):
            prediction = predict_video(self._predictor, video)
            size = None
            if boxes:
                from glimpse_keras.data.video import probe_video

                info = probe_video(video)
                size = (info["height"], info["width"])
        else:
            frames = np.asarray(video)
            squashed = self.squash_frames(frames)
            outputs = self._predictor(squashed)
            prediction = Prediction(
                source="<frames>", probabilities=outputs["probabilities"], class_names=self.class_names,
                locations=outputs["locations"], frame_indices=outputs["frame_indices"],
                num_video_frames=len(squashed))
            size = frames.shape[1:3]
        if boxes:
            prediction.boxes = glimpse_boxes(prediction, size[0], size[1], self.image_size, self.stored_size)
        return prediction

    def timeline(self, video, *, window=None, stride=None, fps=None):
        """When each action happens: windows slide over the video, consecutive
        windows with the same label merge into segments (`timeline.Timeline`).

        Frames are decoded one at a time; at most one window of frames (at
        the stored size) is held in memory, whatever the video's length.

        Args:
            video: a video file path, or uint8 frames (F, H, W, 3) with `fps`.
            window: window length in seconds (default: `clip_seconds`).
            stride: seconds between window starts (default: half the window).
            fps: the video's frame rate (default: what its container declares).

        Returns:
            `timeline.Timeline`.

        Raises:
            timeline.TimelineError: a window longer than the video, no frame
                rate, a bad window or stride; for a video that fails to decode
                after some windows, `timeline.TimelineError` carrying the
                partial `.timeline`.
            VideoDecodeError: a file that cannot be opened.
        """
        from glimpse_keras import timeline

        return timeline.compute_timeline(self, video, window=window, stride=stride, fps=fps)

    def stream(self, source, *, window=None, stride=None, fps=None, rate=1.0, duration=None,
               output_video=None, timeout=None):
        """What is happening now: a rolling buffer of a live source, a prediction every stride.

        Args:
            source: a camera device (/dev/video0, or its number), an RTSP,
                HTTP(S), RTMP or UDP URL, or a video file (read at its own
                frame rate times `rate`).
            window, stride, fps: as `timeline`.
            rate: files only: speed factor of the reading (1 = real time;
                0 = as fast as the model goes, every stride classified).
            duration: stop after this many seconds of the source (None: until it ends).
            output_video: write the stream with the current label on every frame.
            timeout: seconds without a frame before a live source counts as
                stopped (default `streaming.DEFAULT_TIMEOUT`).

        Returns:
            `streaming.Stream`: iterate it for `streaming.StreamResult`s; its
            `stats` hold the frames read, dropped and the latencies.
        """
        from glimpse_keras import streaming

        return streaming.Stream(self, source, window=window, stride=stride, fps=fps, rate=rate,
                                duration=duration, output_video=output_video, timeout=timeout)


def glimpse_boxes(prediction, height, width, image_size, stored_size=None):
    """The glimpse boxes of a prediction in pixels of frames of height x width.

    Returns:
        list of {"frame", "glimpse", "box": [x0, y0, x1, y1]} (inclusive
        pixel corners), frames in order; see `Prediction.boxes`.
    """
    from glimpse_keras.visualize.annotated_video import boxes_per_frame
    from glimpse_keras.visualize.drawing import location_to_box

    boxes = []
    for frame, frame_boxes in sorted(boxes_per_frame(prediction, image_size, stored_size).items()):
        for glimpse, location in frame_boxes:
            box = location_to_box(location, int(height), int(width))
            boxes.append({"frame": frame, "glimpse": int(glimpse), "box": [int(v) for v in box]})
    return boxes
