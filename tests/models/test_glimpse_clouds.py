"""GlimpseClouds: forward maths, losses, training, freezing, saving, precision."""

import json
import os

import keras
import numpy as np
import pytest
from keras import ops

from glimpse_keras import losses
from glimpse_keras.models.glimpse_clouds import GlimpseClouds
from glimpse_keras.models.glimpse_clouds import ModelConfigError
from glimpse_keras.models.glimpse_clouds import TargetsError
from glimpse_keras.models.glimpse_clouds import normalise_video
from glimpse_keras.models.presets import UnknownPresetError
from glimpse_keras.models.presets import build_model_from_preset
from glimpse_keras.models.presets import preset_video_shape
from tests.backend_testing import gradients

FRAMES, SIZE, CLASSES = 2, 64, 5


def make_batch(batch_size=2, frames=FRAMES, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {"video": rng.integers(0, 256, (batch_size, frames, SIZE, SIZE, 3), dtype=np.uint8)}
    mask = np.ones((batch_size, frames, 2, 25), "float32")
    mask[:, :, 1, 10:] = 0.0
    targets = {
        "label": rng.integers(0, CLASSES, batch_size).astype("int32"),
        "pose": rng.uniform(-0.8, 0.8, (batch_size, frames, 2, 25, 2)).astype("float32"),
        "pose_mask": mask,
    }
    return inputs, targets


def tiny_model(**overrides):
    keras.utils.set_random_seed(1)
    arguments = {"num_classes": CLASSES}
    arguments.update(overrides)
    return build_model_from_preset("tiny", **arguments)


def compiled(model, learning_rate=1e-3, run_eagerly=True):
    # Tracing a training graph of the recurrent core takes 10-30 s on a busy
    # 2-core machine, so most tests run the same train_step eagerly on
    # TensorFlow; the frozen-backbone test covers the compiled path. On JAX
    # the step is jitted (XLA), as `fit` runs it: op-by-op JAX compiles every
    # primitive separately and is slower still.
    jit_compile = False
    if keras.backend.backend() == "jax":
        jit_compile, run_eagerly = True, False
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), jit_compile=jit_compile, run_eagerly=run_eagerly
    )
    return model


def test_normalise_video_uses_imagenet_statistics():
    video = np.array([[0, 255, 128]], dtype=np.uint8).reshape(1, 1, 3)
    expected = (np.array([0, 1, 128 / 255]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(np.asarray(normalise_video(video)).ravel(), expected, rtol=1e-5)


def test_caffe_normalisation_is_bgr_minus_mean_and_selectable():
    video = np.array([[0, 255, 128]], dtype=np.uint8).reshape(1, 1, 3)
    expected = np.array([128 - 103.939, 255 - 116.779, 0 - 123.68])
    np.testing.assert_allclose(np.asarray(normalise_video(video, "caffe")).ravel(), expected, rtol=1e-5)
    model = build_model_from_preset("tiny", num_classes=5, variant="global", input_normalization="caffe")
    clip = np.random.default_rng(0).integers(0, 256, (1, 4, 64, 64, 3), dtype=np.uint8)
    features = model.backbone_features(clip)
    reference = model.backbone(normalise_video(clip, "caffe"), training=False)
    np.testing.assert_allclose(np.asarray(features["res5"]), np.asarray(reference["res5"]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelConfigError, match="input_normalization='bgr'"):
        build_model_from_preset("tiny", num_classes=5, input_normalization="bgr")


def test_outputs_follow_the_heads_maths():
    model = tiny_model()
    inputs, _ = make_batch()
    outputs = model(inputs)
    features = model.backbone(normalise_video(inputs["video"]))
    context = ops.mean(features["res4"], axis=(2, 3))
    pose = ops.tanh(context @ model.pose_head.kernel + model.pose_head.bias)
    np.testing.assert_allclose(outputs["pose"], ops.reshape(pose, (2, FRAMES, 2, 25, 2)), atol=1e-5)
    core = model.core(features["res5"], context)
    per_step = (
        ops.einsum("btcu,cuk->btck", core["worker_states"], model.worker_classifier.kernel)
        + model.worker_classifier.bias
    )
    np.testing.assert_allclose(outputs["logits"], ops.mean(per_step, axis=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(outputs["locations"], core["locations"], atol=1e-6)
    assert outputs["assignments"].shape == (2, FRAMES, 3, 3)
    np.testing.assert_allclose(np.sum(outputs["assignments"], axis=-1), 1.0, atol=1e-5)
    # A float video in [0, 255] gives the same outputs as the uint8 one.
    float_outputs = model(ops.cast(inputs["video"], "float32"))
    np.testing.assert_allclose(float_outputs["logits"], outputs["logits"], atol=1e-6)


def test_global_variant_pools_res5_and_returns_zero_glimpses():
    model = tiny_model(variant="global")
    inputs, _ = make_batch()
    outputs = model(inputs)
    res5 = model.backbone(normalise_video(inputs["video"]))["res5"]
    pooled = ops.mean(res5, axis=(1, 2, 3))
    expected = pooled @ model.global_classifier.kernel + model.global_classifier.bias
    np.testing.assert_allclose(outputs["logits"], expected, atol=1e-5)
    assert outputs["locations"].shape == (2, FRAMES, 3, 4)
    assert outputs["assignments"].shape == (2, FRAMES, 3, 3)
    assert not np.any(outputs["locations"]) and not np.any(outputs["assignments"])


def test_loss_terms_are_the_weighted_sum_of_the_losses_module():
    model = tiny_model(pose_loss_weight=0.5, diversity_loss_weight=2.0, attraction_loss_weight=3.0)
    inputs, targets = make_batch()
    outputs = model(inputs)
    terms = model.compute_loss_terms(targets, outputs)
    expected = {
        "class_loss": losses.classification_loss(targets["label"], outputs["logits"]),
        "pose_loss": losses.pose_loss(outputs["pose"], targets["pose"], targets["pose_mask"]),
        "diversity_loss": losses.glimpse_diversity_loss(outputs["locations"]),
        "attraction_loss": losses.glimpse_attraction_loss(
            outputs["locations"], targets["pose"], targets["pose_mask"]
        ),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(float(terms[name]), float(value), rtol=1e-6)
    total = (
        expected["class_loss"] + 0.5 * expected["pose_loss"]
        + 2.0 * expected["diversity_loss"] + 3.0 * expected["attraction_loss"]
    )
    np.testing.assert_allclose(float(terms["loss"]), float(total), rtol=1e-6)


AUTHORS_LOSS_SWITCHES = {
    "attraction_per_axis_min": True,
    "diversity_include_self_pairs": True,
    "pose_matching": "first_person",
    "match_single_person": False,
}


def test_authors_loss_switches_reach_the_losses_with_their_names():
    model = tiny_model(**AUTHORS_LOSS_SWITCHES)
    inputs, targets = make_batch()
    outputs = dict(model(inputs))
    # Hand-made outputs and targets on which each switch changes its term:
    # glimpses apart, one at the centre; the first person at (0, 0.9), the
    # second at x = 1 (joints at random heights, so the per-axis minimum pairs
    # x = 0 with the height nearest a glimpse); the predictions of frame 0
    # paired differently by the first person's errors and by the total
    # (losses tests), frame 1 showing the first person only, nearer slot 1.
    outputs["locations"] = np.zeros((2, FRAMES, 3, 4), "float32") + 0.5
    outputs["locations"][..., :2] = [[0.0, 0.0], [0.5, 0.0], [0.0, -0.5]]
    targets["pose"][:, :, 0] = [0.0, 0.9]
    targets["pose"][:, :, 1, :, 0] = 1.0
    targets["pose_mask"][:, 1, 1] = 0.0
    outputs["pose"] = targets["pose"].copy()
    outputs["pose"][:, 0, :, :, 0] = np.array([0.6, -0.7])[:, None]
    outputs["pose"][:, 1, :, :, 0] = np.array([0.8, 0.2])[:, None]
    terms = model.compute_loss_terms(targets, outputs)
    pose, target, mask = outputs["pose"], targets["pose"], targets["pose_mask"]
    locations = outputs["locations"]
    authors = {
        "pose_loss": losses.pose_loss(pose, target, mask, match_single_person=False, pose_matching="first_person"),
        "diversity_loss": losses.glimpse_diversity_loss(locations, include_self_pairs=True),
        "attraction_loss": losses.glimpse_attraction_loss(locations, target, mask, per_axis_min=True),
    }
    ours = {
        "pose_loss": losses.pose_loss(pose, target, mask),
        "diversity_loss": losses.glimpse_diversity_loss(locations),
        "attraction_loss": losses.glimpse_attraction_loss(locations, target, mask),
    }
    for name, value in authors.items():
        np.testing.assert_allclose(float(terms[name]), float(value), rtol=1e-6, err_msg=name)
        assert abs(float(value) - float(ours[name])) > 1e-4, name  # the switch changes the term
    config = model.get_config()
    rebuilt = GlimpseClouds.from_config(json.loads(json.dumps(config)))
    for name, value in AUTHORS_LOSS_SWITCHES.items():
        assert config[name] == value and getattr(rebuilt, name) == value, name
    with pytest.raises(ModelConfigError, match="pose_matching='first'"):
        tiny_model(pose_matching="first")


def test_global_variant_loss_is_classification_only():
    model = tiny_model(variant="global")
    inputs, targets = make_batch()
    outputs = model(inputs)
    terms = model.compute_loss_terms(targets["label"], outputs)
    np.testing.assert_allclose(float(terms["loss"]), float(terms["class_loss"]), rtol=1e-7)
    assert [m.name for m in model.metrics] == ["loss", "class_loss", "accuracy", "top5_accuracy"]


def test_missing_pose_targets_are_named():
    model = tiny_model(variant="global_pose")
    inputs, targets = make_batch()
    with pytest.raises(TargetsError, match="pose_mask"):
        model.compute_loss_terms({"label": targets["label"], "pose": targets["pose"]}, model(inputs))


def test_full_model_fit_decreases_the_losses():
    model = compiled(tiny_model())
    inputs, targets = make_batch(batch_size=4)
    history = model.fit(inputs, targets, batch_size=4, epochs=6, verbose=0).history
    names = ["loss", "class_loss", "pose_loss", "diversity_loss", "attraction_loss"]
    assert set(names + ["accuracy", "top5_accuracy"]) <= set(history)
    for name in names:
        assert np.all(np.isfinite(history[name])), name
    for name in ("loss", "class_loss", "pose_loss"):
        assert history[name][-1] < history[name][0], (name, history[name])
    evaluation = model.evaluate(inputs, targets, batch_size=4, verbose=0, return_dict=True)
    assert set(names) <= set(evaluation)


VARIANT_CASES = [("global", "attention"), ("global_pose", "attention")] + [
    (variant, glimpse_type)
    for variant in ("glimpse_gru", "glimpse_clouds")
    for glimpse_type in ("attention", "tube", "random", "saliency")
]


@pytest.mark.parametrize("variant,glimpse_type", VARIANT_CASES)
def test_every_variant_and_glimpse_type_trains_one_step(variant, glimpse_type):
    model = compiled(tiny_model(variant=variant, glimpse_type=glimpse_type))
    inputs, targets = make_batch(frames=2)
    model(inputs)
    before = [w.numpy() for w in model.trainable_weights]
    logs = model.train_on_batch(inputs, targets, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    changed = [not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    assert sum(changed) >= len(changed) // 2
    outputs = model.predict_on_batch(inputs)
    workers = 1 if variant == "glimpse_gru" else 3
    assert outputs["assignments"].shape == (2, 2, 3 if model.is_global else workers, 3)
    if glimpse_type in ("random", "saliency") and not model.is_global:
        np.testing.assert_allclose(outputs["locations"][..., 2:], 0.5)


@pytest.mark.parametrize("options", [{"locator": "spatial"}, {"locator_keypoints": 4},
                                     {"locator": "spatial", "train_backbone_from": "res4"}])
def test_locators_that_read_the_res4_map_train_one_step(options):
    model = compiled(tiny_model(**options))
    inputs, targets = make_batch()
    model(inputs)
    locator_before = [w.numpy() for w in model.core.locator.trainable_weights]
    logs = model.train_on_batch(inputs, targets, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    assert model.core.needs_context_map
    changed = [not np.allclose(b, w.numpy()) for b, w in zip(locator_before, model.core.locator.trainable_weights)]
    assert all(changed)


@pytest.mark.parametrize("options", [{}, {"locator": "spatial", "raw_location_embedding": True},
                                     {"glimpse_type": "random"}, {"variant": "glimpse_gru"}])
def test_own_locations_supplied_reproduce_the_logits_exactly(options):
    model = tiny_model(**options)
    inputs, _ = make_batch(seed=3)
    features = model.backbone_features(inputs["video"], training=False)
    own = model.call_on_features(features["res4"], features["res5"], training=False)
    again = model.call_on_features(features["res4"], features["res5"], training=False,
                                   locations=own["locations"], raw_locations=own["raw_locations"])
    np.testing.assert_array_equal(np.asarray(again["logits"]), np.asarray(own["logits"]))
    swapped = model.call_on_features(features["res4"], features["res5"], training=False,
                                     locations=np.asarray(own["locations"])[::-1])
    assert np.abs(np.asarray(swapped["logits"]) - np.asarray(own["logits"])).max() > 1e-6


def test_glimpses_can_crop_res4_instead_of_res5():
    model = tiny_model(glimpse_map="res4")
    inputs, _ = make_batch(seed=4)
    features = model.backbone_features(inputs["video"], training=False)
    outputs = model.core_outputs(features["res4"], features["res5"], training=False)
    channels4 = features["res4"].shape[-1]
    assert outputs["glimpse_features"].shape[-1] == channels4 != features["res5"].shape[-1]
    first = np.asarray(outputs["locations"])[:, 0, :1]
    crop = model.core.crop(features["res4"][:, 0], first)[:, 0]
    fused = model.core.fusion(crop, first[:, 0], np.asarray(outputs["raw_locations"])[:, 0, 0])
    np.testing.assert_allclose(np.asarray(outputs["glimpse_features"])[:, 0, 0], np.asarray(fused), atol=1e-5)
    assert GlimpseClouds.from_config(model.get_config()).glimpse_map == "res4"
    with pytest.raises(ModelConfigError, match="glimpse_map='res3'"):
        tiny_model(glimpse_map="res3")


def test_glimpses_and_workers_can_differ():
    model = compiled(tiny_model(num_glimpses=2, num_workers=4))
    inputs, targets = make_batch()
    logs = model.train_on_batch(inputs, targets, return_dict=True)
    assert np.isfinite(logs["loss"])
    outputs = model(inputs)
    assert outputs["locations"].shape == (2, FRAMES, 2, 4)
    assert outputs["assignments"].shape == (2, FRAMES, 4, 2)
    assert model.worker_classifier.kernel.shape == (4, 32, CLASSES)


def test_frozen_backbone_is_untouched_while_heads_train():
    model = compiled(tiny_model(freeze_backbone=True), learning_rate=1e-2, run_eagerly=False)
    inputs, targets = make_batch()
    model(inputs)
    backbone_ids = {id(v) for v in model.backbone.weights}
    assert not backbone_ids & {id(v) for v in model.trainable_variables}
    backbone_before = [w.numpy() for w in model.backbone.weights]  # incl. BN moving stats
    heads_before = [w.numpy() for w in model.pose_head.weights + model.worker_classifier.weights]
    model.train_on_batch(inputs, targets)
    for before, weight in zip(backbone_before, model.backbone.weights):
        np.testing.assert_array_equal(before, weight.numpy(), err_msg=weight.path)
    heads_after = [w.numpy() for w in model.pose_head.weights + model.worker_classifier.weights]
    assert all(not np.allclose(b, a) for b, a in zip(heads_before, heads_after))
    # Even a gradient with respect to every backbone weight (BatchNorm
    # statistics included) finds no path through it.

    def loss(*weights):
        return model.compute_loss_terms(targets, model(inputs, training=True))["loss"]

    for gradient in gradients(loss, list(model.backbone.weights)):
        assert gradient is None or not np.any(gradient)


def test_unfrozen_backbone_updates_batchnorm_statistics():
    model = compiled(tiny_model(variant="global_pose"))
    inputs, targets = make_batch()
    model(inputs)
    moving = [w for w in model.backbone.non_trainable_weights if "moving_mean" in w.path]
    before = [w.numpy() for w in moving]
    model.train_on_batch(inputs, targets)
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, moving))


def test_train_backbone_from_trains_the_later_stages_only():
    model = compiled(tiny_model(train_backbone_from="res4"), learning_rate=1e-2, run_eagerly=False)
    inputs, targets = make_batch()
    model(inputs)
    trainable = {id(v) for v in model.trainable_variables}
    early = [w for w in model.backbone.weights if w.path.split("/")[-2].split("_")[0] in ("stem", "res2", "res3")]
    late = [w for w in model.backbone.trainable_weights]
    assert early and late
    assert not {id(w) for w in early} & trainable
    assert {w.path.split("/")[-2].split("_")[0] for w in late} == {"res4", "res5"}
    early_before = [w.numpy() for w in early]  # incl. BN moving stats: inference mode
    late_moving = [w for w in model.backbone.non_trainable_weights
                   if "moving_mean" in w.path and w.path.split("/")[-2].startswith(("res4", "res5"))]
    late_kernels = [w for w in late if "kernel" in w.path]
    moving_before = [w.numpy() for w in late_moving]
    kernels_before = [w.numpy() for w in late_kernels]
    model.train_on_batch(inputs, targets)
    for before, weight in zip(early_before, early):
        np.testing.assert_array_equal(before, weight.numpy(), err_msg=weight.path)
    assert all(not np.allclose(b, w.numpy()) for b, w in zip(kernels_before, late_kernels))
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(moving_before, late_moving))
    assert model.get_config()["train_backbone_from"] == "res4"
    with pytest.raises(ModelConfigError, match="train_backbone_from='res6'"):
        tiny_model(train_backbone_from="res6")


def _stage(weight):
    return weight.path.split("/")[-2].split("_")[0]


@pytest.mark.parametrize(
    "frozen_batchnorm,frozen_stages",
    [
        ("inference", "all"),
        ("drift", "all"),
        ("drift", ("stem", "res2", "res3")),  # train_backbone_from="res4"
    ],
)
def test_frozen_batchnorm_drift_updates_the_moving_statistics_only(frozen_batchnorm, frozen_stages):
    freezing = {"freeze_backbone": True} if frozen_stages == "all" else {"train_backbone_from": "res4"}
    model = compiled(tiny_model(frozen_batchnorm=frozen_batchnorm, **freezing), learning_rate=1e-2)
    inputs, targets = make_batch()
    model(inputs)
    frozen = [w for w in model.backbone.weights if frozen_stages == "all" or _stage(w) in frozen_stages]
    assert not {id(w) for w in frozen} & {id(v) for v in model.trainable_variables}
    moving = [w for w in frozen if w.path.endswith(("moving_mean", "moving_variance"))]
    learned = [w for w in frozen if w.path.endswith(("kernel", "gamma", "beta"))]
    assert moving and learned
    moving_before = [w.numpy() for w in moving]
    learned_before = [w.numpy() for w in learned]
    model.train_on_batch(inputs, targets)
    drifted = [not np.allclose(b, w.numpy()) for b, w in zip(moving_before, moving)]
    assert all(drifted) if frozen_batchnorm == "drift" else not any(drifted)
    for before, weight in zip(learned_before, learned):
        np.testing.assert_array_equal(before, weight.numpy(), err_msg=weight.path)
    # Cached backbone features are valid only while nothing in it can change.
    assert model.backbone_features_are_fixed == (frozen_batchnorm == "inference" and frozen_stages == "all")
    assert model.get_config()["frozen_batchnorm"] == frozen_batchnorm
    # Inference uses the moving statistics and leaves them alone.
    after = [w.numpy() for w in moving]
    model.predict_on_batch(inputs)
    for before, weight in zip(after, moving):
        np.testing.assert_array_equal(before, weight.numpy())
    with pytest.raises(ModelConfigError, match="frozen_batchnorm='train'"):
        tiny_model(freeze_backbone=True, frozen_batchnorm="train")


def test_multi_clip_video_averages_logits_over_clips():
    model = tiny_model()
    first, _ = make_batch(seed=1)
    second, _ = make_batch(seed=2)
    clips = np.stack([first["video"], second["video"]], axis=1)
    outputs = model({"video": clips})
    expected = (model(first)["logits"] + model(second)["logits"]) / 2.0
    np.testing.assert_allclose(outputs["logits"], expected, atol=1e-5)
    assert outputs["pose"].shape == (2, 2, FRAMES, 2, 25, 2)


def test_config_round_trip_is_identical():
    model = tiny_model(variant="glimpse_gru", num_glimpses=2, time_decay="code")
    config = model.get_config()
    rebuilt = GlimpseClouds.from_config(json.loads(json.dumps(config)))
    assert json.dumps(rebuilt.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    assert rebuilt.core.time_decay == "code"


CONFIG_SWITCHES = {
    "detach_location": True,
    "assign_axis": "workers",
    "distance": "code",
    "time_decay": "code",
    "memory_capacity": 2,
    "share_first_worker_state": True,
    "raw_location_embedding": True,
    "scale_bias": 2.0,
    "max_scale": 0.9,
    "zoomer_reset_each_frame": True,
}


def test_core_switches_are_plain_arguments_with_the_config_names():
    model = tiny_model(**CONFIG_SWITCHES)
    config = model.get_config()
    assert "core_options" not in config
    for name, value in CONFIG_SWITCHES.items():
        assert config[name] == value, name
        assert getattr(model, name) == value, name
        assert getattr(model.core, name) == value, name
    assert model.core.memory.time_decay == "code" and model.core.memory.memory_capacity == 2
    assert model.core.fusion.raw_location_embedding and model.core.crop.detach_location
    assert model.core.locator.max_scale == 0.9 and model.core.locator.scale_bias == 2.0


def test_locator_levers_and_random_scales_reach_the_core():
    model = tiny_model(locator="spatial", locator_keypoints=3)
    config = model.get_config()
    assert (config["locator"], config["locator_keypoints"]) == ("spatial", 3)
    assert model.core.locator_type == "spatial" and model.core.keypoints.num_keypoints == 3
    assert type(model.core.locator).__name__ == "SpatialGlimpseLocator"
    rebuilt = GlimpseClouds.from_config(json.loads(json.dumps(config)))
    assert rebuilt.core.locator_type == "spatial" and rebuilt.core.locator_keypoints == 3
    random = tiny_model(glimpse_type="random", fixed_glimpse_scale=0.2, glimpse_scale_samples=[[0.1, 0.3]])
    assert random.core.fixed_glimpse_scale == 0.2 and random.core.glimpse_scale_samples == [[0.1, 0.3]]
    outputs = random(make_batch()[0])
    np.testing.assert_allclose(np.asarray(outputs["locations"])[..., 2:], np.broadcast_to([0.1, 0.3], (2, FRAMES, 3, 2)))


def test_core_options_still_works_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="core_options"):
        model = tiny_model(core_options={"decay": "code", "use_raw_location": True, "temperature": 0.7})
    assert model.time_decay == "code" and model.core.time_decay == "code"
    assert model.raw_location_embedding and model.core.fusion.raw_location_embedding
    assert model.core.temperature == 0.7
    with pytest.warns(DeprecationWarning), pytest.raises(ModelConfigError, match="time_decay"):
        tiny_model(time_decay="code", core_options={"decay": "recency"})


def test_a_model_config_saved_with_core_options_loads():
    # Written by GlimpseClouds.get_config before the core switches became
    # arguments: they sat in "core_options", with the old names "decay"
    # ("recency" | "code") and "use_raw_location".
    path = os.path.join(os.path.dirname(__file__), "old_configs", "glimpse_clouds_core_options.json")
    with open(path) as file:
        old_config = json.load(file)
    assert old_config["core_options"]["decay"] == "code"
    with pytest.warns(DeprecationWarning, match="core_options"):
        model = GlimpseClouds.from_config(old_config)
    expected = dict(CONFIG_SWITCHES, share_first_worker_state=False)
    for name, value in expected.items():
        assert getattr(model.core, name) == value, name
    config = model.get_config()
    assert "core_options" not in config and config["time_decay"] == "code"
    video = np.zeros((1, FRAMES, 32, 32, 3), "uint8")
    assert model(video)["logits"].shape == (1, old_config["num_classes"])


def test_keras_file_round_trip_gives_the_same_outputs(tmp_path):
    model = compiled(tiny_model(freeze_backbone=True))
    inputs, targets = make_batch()
    model.train_on_batch(inputs, targets)
    expected = model(inputs)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, GlimpseClouds) and restored.freeze_backbone
    actual = restored(inputs)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], atol=1e-6, err_msg=key)


def test_mixed_bfloat16_step_keeps_logits_and_losses_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = compiled(tiny_model())
        inputs, targets = make_batch()
        logs = model.train_on_batch(inputs, targets, return_dict=True)
        outputs = model(inputs)
        assert model.backbone.compute_dtype == "bfloat16"
        assert outputs["logits"].dtype == "float32"
        assert model.compute_loss_terms(targets, outputs)["loss"].dtype == "float32"
        assert np.isfinite(logs["loss"])
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mixed_float16_step_scales_the_loss():
    if keras.backend.backend() == "tensorflow" and not keras.distribution.list_devices("gpu"):
        pytest.skip("TensorFlow has no float16 MaxPool3D kernel on CPU")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = compiled(tiny_model(variant="global_pose"))
        inputs, targets = make_batch()
        model(inputs)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        before = [w.numpy() for w in model.trainable_weights]
        logs = model.train_on_batch(inputs, targets, return_dict=True)
        assert np.isfinite(logs["loss"]) and model.backbone.compute_dtype == "float16"
        # A finite step is applied (a non-finite one would only lower the scale).
        assert int(model.optimizer.inner_optimizer.iterations.numpy()) == 1
        assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_stage_transfer_copies_backbone_and_pose_head():
    from glimpse_keras.training import transfer_weights

    source, target = tiny_model(variant="global_pose"), tiny_model()
    inputs, _ = make_batch()
    source(inputs)
    keras.utils.set_random_seed(7)
    target = GlimpseClouds.from_config(target.get_config())
    target(inputs)
    assert transfer_weights(source, target) == (
        ["backbone", "pose_head"], ["core", "worker_classifier"]
    )
    np.testing.assert_allclose(target(inputs)["pose"], source(inputs)["pose"], atol=1e-6)


def test_invalid_arguments_are_named():
    with pytest.raises(ModelConfigError, match="variant='glimpse'"):
        GlimpseClouds(variant="glimpse", backbone="tiny")
    with pytest.raises(ModelConfigError, match="pose_loss_weight"):
        GlimpseClouds(backbone="tiny", pose_loss_weight=-1)
    with pytest.warns(DeprecationWarning), pytest.raises(ModelConfigError, match="fusion_hidden_units"):
        GlimpseClouds(backbone="tiny", core_options={"fusion_hidden_units": 3})
    with pytest.raises(UnknownPresetError, match="huge"):
        build_model_from_preset("huge")


def test_presets_describe_the_authors_configuration():
    assert preset_video_shape("resnet50") == (8, 224, 224, 3)
    model = build_model_from_preset("resnet50")
    assert (model.num_glimpses, model.num_workers) == (3, 3)
    assert (model.zoomer_units, model.worker_units, model.where_units) == (512, 512, 256)
    assert model.backbone.res4_channels == 1024 and model.backbone.res5_channels == 2048
