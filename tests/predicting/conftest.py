"""A tiny run whose model tells three colours apart, and videos that join those colours.

The model is the tiny Glimpse Clouds preset with random weights except its
worker classifier, which is set in closed form to a nearest-centroid rule on
the clip features (the time- and worker-averaged worker states, on which the
logits are linear): the centroid of each class is measured on clips of a
video of that colour, sampled as evaluation samples them. So the model
really separates red, green and blue videos (checked by `colour_run`), at no
training cost and deterministically, and a window that straddles two colours
gets probabilities in between. Class c is `CLASS_NAMES[c]` (NTU's first
three names, the run's dataset being "ntu").
"""

import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from glimpse_keras import config as config_lib
from glimpse_keras.classifier import sample_clips
from glimpse_keras.data.ntu import NTU60_CLASS_NAMES
from glimpse_keras.data.video import resize_frame
from glimpse_keras import runs
from glimpse_keras.experiment import Experiment
from tests.data.test_video import write_avi

T, SIZE, STORED, CLIPS = 4, 64, 72, 2
COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200))  # red, green, blue: classes 0, 1, 2
CLASS_NAMES = list(NTU60_CLASS_NAMES[:3])
FPS = 10
SECONDS_PER_COLOUR = 3.0
HEIGHT, WIDTH = 96, 128


def colour_frames(colour, count, seed, height=HEIGHT, width=WIDTH):
    """`count` uint8 RGB frames of one colour with pixel noise and a moving dark bar."""
    rng = np.random.default_rng(seed)
    frames = np.clip(np.asarray(COLOURS[colour], np.float32) + rng.normal(0, 12, (count, height, width, 3)), 0, 255)
    for index in range(count):
        column = (7 * index) % (width - 8)
        frames[index, :, column: column + 8] *= 0.5
    return frames.astype(np.uint8)


def joined_frames(order=(0, 1, 2), seconds=SECONDS_PER_COLOUR, seed=1):
    """The frames of videos of the colours in `order`, one after the other, and the join times."""
    count = int(round(seconds * FPS))
    frames = np.concatenate([colour_frames(colour, count, seed + number) for number, colour in enumerate(order)])
    joins = [seconds * number for number in range(1, len(order))]
    return frames, joins


def clip_features(model, clips):
    """Time- and worker-averaged worker states of clips (N, T, S, S, 3): (N, workers, units)."""
    features = model.backbone_features(clips, training=False)
    context = keras.ops.mean(features["res4"], axis=(2, 3))
    outputs = model.core(features["res5"], context, training=False)
    return np.asarray(outputs["worker_states"], np.float64).mean(axis=1)


def set_nearest_centroid_classifier(model, centroids, margin=20.0):
    """Worker classifier weights whose logits are margin * (f . m_c - |m_c|^2 / 2) / d^2.

    The model's logits are the mean over time and workers of
    `states[c] W_c + b_c`, i.e. `(1 / C) sum_c f_c W_c + mean_c b_c` for the
    averaged states f; W_c = C * s * m_c and b_c = -s |m|^2 / 2 give
    s * (f . m - |m|^2 / 2), the nearest-centroid rule (d = the smallest
    distance between two centroids, so the margin between classes is ~margin / 2).
    """
    classes, workers, units = centroids.shape
    flat = centroids.reshape(classes, -1)
    distances = [np.sum((flat[a] - flat[b]) ** 2) for a in range(classes) for b in range(a + 1, classes)]
    scale = margin / min(distances)
    kernel = np.transpose(centroids, (1, 2, 0)) * workers * scale
    bias = np.broadcast_to(-0.5 * scale * np.sum(flat ** 2, axis=1), (workers, classes))
    model.worker_classifier.kernel.assign(kernel.astype(np.float32))
    model.worker_classifier.bias.assign(np.ascontiguousarray(bias, np.float32))


@pytest.fixture(scope="session")
def colour_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("colour_run")
    config = config_lib.load_config(overrides=[
        "model.preset=tiny",
        "model.num_classes=3",
        f"data.num_frames={T}",
        f"data.image_size={SIZE}",
        f"data.stored_size={STORED}",
        f"data.clips_per_video={CLIPS}",
        "data.dataset=ntu",
        "train.stages=[{name: glimpses, variant: glimpse_clouds, epochs: 1}]",
    ])
    stage = config.train.stages[0]
    keras.utils.set_random_seed(5)
    model = Experiment(config).build_stage_model(stage, tf.distribute.get_strategy(), compile_model=False)

    def evaluation_clips(frames):
        squashed = np.stack([resize_frame(frame, (STORED, STORED)) for frame in frames])
        return sample_clips(squashed, T, SIZE, 4)[0]

    centroids = np.stack([clip_features(model, evaluation_clips(colour_frames(c, 30, seed=100 + c))).mean(axis=0)
                          for c in range(3)])
    set_nearest_centroid_classifier(model, centroids)
    # The rule must separate fresh videos of each colour before any test relies on it.
    for colour in range(3):
        clips = evaluation_clips(colour_frames(colour, 12, seed=200 + colour))[:CLIPS]
        logits = np.asarray(model(clips[None], training=False)["logits"])[0]
        assert int(np.argmax(logits)) == colour, (colour, logits)
    run = root / "run"
    os.makedirs(run / stage.name)
    model.save_weights(str(run / stage.name / runs.FINAL))
    config_lib.save_config(config, str(run / "config.yaml"))
    frames, joins = joined_frames()
    video = root / "joined.avi"
    write_avi(video, list(frames), rate=FPS)
    return types.SimpleNamespace(run=str(run), root=root, model=model, config=config, video=str(video),
                                 frames=frames, joins=joins)


@pytest.fixture(scope="session")
def colour_classifier(colour_run):
    from glimpse_keras import Classifier

    return Classifier.from_run(colour_run.run)
