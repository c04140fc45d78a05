"""Speed of the Glimpse Clouds model against the machine's matmul peak.

Prints, in one run (timings drift on shared machines, so only ratios within
one run are meaningful; every figure is the best of --repeats calls, the
candidates of a group timed round-robin):

* the 4096^2 tf.matmul peak in float32 and bfloat16, measured before and
  after each dtype policy (the best is used), and the load average;
* the analytic FLOPs of one clip (convolutions and matmuls of the traced
  forward graph);
* per policy (float32, mixed_bfloat16), inference on one clip (batch 1):
  the full model as Keras runs it (`tf.function` of `model(x)`), its copy
  with the backbone's BatchNorms folded into the convolutions ("BN
  folded", `fold_model_batch_norm`: what the export and the evaluation
  run), the backbone alone (as built and folded), the part after the
  backbone (glimpses, memory, workers, heads: `call_on_features`) alone,
  and the chain of the core's matrix products alone (its weight-read
  floor, see `weight_read_floor`), with GFLOP/s and the fraction of the
  float32 and of the policy's peak;
  under mixed_bfloat16 also the core run in bfloat16 (the layout before
  the model pinned its core to float32) for comparison;
* per policy, training steps (seconds per clip): stage 1 ("global_pose",
  trainable backbone), stage 2 ("glimpse_clouds", frozen backbone, batch 4)
  next to a batch-4 forward and the batch-4 after-backbone forward, stage 2
  on cached backbone features, and end-to-end ("glimpse_clouds", trainable
  backbone);
* the agreement of mixed_bfloat16 with float32 (same weights, BatchNorm
  statistics calibrated on the clips) on the predicted class of
  --agreement-clips structured clips, with the float32
  top-1 margins and the largest logit difference: once with the randomly
  initialised head (near-tied logits) and once with a prototype head fitted
  to the float32 features of the clips (clip k is class k with a margin
  that depends on the features; see `fit_prototype_classifier`).

Usage:
    python benchmarks/model_speed.py                  # authors' configuration, ~4-5 min
    python benchmarks/model_speed.py --skip-training  # inference figures only
    python benchmarks/model_speed.py --preset tiny    # seconds, a smoke run
"""

import argparse
import gc

import common  # noqa: F401  (sets sys.path and TF_CPP_MIN_LOG_LEVEL)
from common import graph_gflops
from common import interleaved_best
from common import load_average
from common import matmul_peak_function
from common import peak_for_policy
from common import print_peaks

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from glimpse_keras.layers.glimpse_clouds_core import GlimpseCloudsCore  # noqa: E402
from glimpse_keras.models.folding import fold_model_batch_norm  # noqa: E402
from glimpse_keras.models.glimpse_clouds import normalise_video  # noqa: E402
from glimpse_keras.models.presets import MODEL_PRESETS  # noqa: E402
from glimpse_keras.models.presets import build_model_from_preset  # noqa: E402
from glimpse_keras.models.presets import preset_video_shape  # noqa: E402

POLICIES = ("float32", "mixed_bfloat16")


def structured_clips(count, video_shape, seed=0):
    """Non-trivial uint8 clips: smooth colour fields with a moving bright square.

    Random low-resolution colour fields are upsampled bilinearly (so the
    backbone sees image-like spatial structure rather than white noise) and
    a square moves across the frames, so every clip differs in appearance
    and motion.

    Returns:
        uint8 array (count,) + video_shape.
    """
    frames, height, width, _ = video_shape
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (count * frames, 7, 7, 3)).astype("float32")
    fields = tf.image.resize(coarse, (height, width), method="bilinear").numpy()
    clips = fields.reshape((count, frames, height, width, 3))
    side = max(height // 8, 1)
    for index in range(count):
        start = rng.integers(0, height - side, 2)
        step = rng.integers(-height // 16, height // 16 + 1, 2)
        for t in range(frames):
            y, x = np.clip(start + t * step, 0, height - side)
            clips[index, t, y : y + side, x : x + side] = 255.0
    return np.clip(clips, 0, 255).astype("uint8")


def random_targets(batch_size, video_shape, num_classes, seed=0):
    """Labels and full-mask pose targets for a training step."""
    rng = np.random.default_rng(seed)
    frames = video_shape[0]
    return {
        "label": tf.constant(rng.integers(0, num_classes, batch_size), tf.int32),
        "pose": tf.constant(rng.uniform(-1, 1, (batch_size, frames, 2, 25, 2)), tf.float32),
        "pose_mask": tf.ones((batch_size, frames, 2, 25), tf.float32),
    }


def build(preset, policy, seed=0, **overrides):
    """A built model of `preset` under `policy` with seeded weights."""
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(seed)
    try:
        model = build_model_from_preset(preset, **overrides)
        model.build((None,) + preset_video_shape(preset))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


def with_peaks(candidates, repeats):
    """Times `candidates` round-robin together with the two matmul peaks.

    Returns:
        (seconds, peaks): dict name -> best seconds of the candidates, and
        dict {"float32", "bfloat16"} -> GFLOP/s measured in the same rounds.
    """
    peak_functions = {}
    for dtype in ("float32", "bfloat16"):
        function, flop = matmul_peak_function(dtype)
        peak_functions[f"peak {dtype}"] = function
    best = interleaved_best(dict(peak_functions, **candidates), repeats)
    peaks = {dtype: flop / best.pop(f"peak {dtype}") / 1e9 for dtype in ("float32", "bfloat16")}
    return best, peaks


def weight_read_floor(core, batch_size, frames):
    """A chain of the core's matrix products with nothing else in between.

    Per frame, the matmuls the attention core runs, on the core's own
    kernels and with the same dependencies (each glimpse waits for the
    previous zoomer state, each frame for the previous workers): the
    zoomer's worker-state projection, then per glimpse its glimpse and
    recurrent projections and Lambda's output layer, then the memory
    projection of the G glimpses and the workers' input and recurrent
    projections. At batch 1 these are matrix-vector products bound by
    reading the ~83 MB of kernels from memory T or T x G times, so the time of
    this chain is the floor of the part after the backbone on this machine.

    Returns:
        A zero-argument callable.
    """
    zoomer, memory, workers, fusion = core.zoomer, core.memory, core.workers, core.fusion
    channels = memory.metric_kernel.shape[0]
    glimpses, num_workers = core.num_glimpses, workers.num_workers
    glimpse = tf.random.uniform((batch_size, channels))

    @tf.function
    def chain():
        zoomer_state = tf.zeros((batch_size, core.zoomer_units))
        worker_state = tf.zeros((num_workers, batch_size, core.worker_units))
        for _ in range(frames):
            worker_part = tf.matmul(tf.reduce_sum(worker_state, 0), zoomer.kernel[channels:])
            values = []
            for _ in range(glimpses):
                value = glimpse * tf.matmul(zoomer_state[:, : fusion.hidden_units], fusion.output_kernel)
                gates = tf.matmul(value, zoomer.kernel[:channels]) + worker_part
                gates += tf.matmul(zoomer_state, zoomer.recurrent_kernel)
                zoomer_state = tf.tanh(gates[:, : core.zoomer_units])
                values.append(value)
            queries = tf.matmul(tf.stack(values, 1), memory.metric_kernel)
            inputs = tf.tile(tf.reduce_mean(queries, 1)[None], (num_workers, 1, 1))
            gates = tf.matmul(inputs, workers.kernel) + tf.matmul(worker_state, workers.recurrent_kernel)
            worker_state = tf.tanh(gates[..., : core.worker_units])
        return worker_state

    return chain


def inference_figures(model, clip, repeats):
    """Seconds per clip of the inference candidates of one model (batch 1).

    Returns:
        (seconds, peaks) as `with_peaks`.
    """
    video = tf.constant(clip)
    folded = fold_model_batch_norm(model)
    forward = tf.function(lambda x: model(x, training=False))
    folded_forward = tf.function(lambda x: folded(x, training=False))
    normalised = tf.cast(normalise_video(video), model.backbone.compute_dtype)
    backbone = tf.function(lambda x: model.backbone(x, training=False))
    folded_backbone = tf.function(lambda x: folded.backbone(x, training=False))
    features = backbone(normalised)
    after = tf.function(lambda a, b: model.call_on_features(a, b, training=False))
    candidates = {
        "full forward": lambda: forward(video),
        "full forward, BN folded": lambda: folded_forward(video),
        "backbone forward": lambda: backbone(normalised),
        "backbone forward, BN folded": lambda: folded_backbone(normalised),
        "after-backbone forward": lambda: after(features["res4"], features["res5"]),
    }
    if model.core is not None and model.core.zoomer is not None and model.core.memory is not None:
        candidates["after-backbone weight-read floor"] = weight_read_floor(
            model.core, 1, features["res5"].shape[1]
        )
    if model.core.compute_dtype != model.backbone.compute_dtype:
        # The layout before the fix: the core follows the model's policy.
        config = dict(model.core.get_config(), dtype=model.backbone.dtype_policy.name)
        core16 = GlimpseCloudsCore.from_config(config)
        context = tf.reduce_mean(features["res4"], axis=(2, 3))
        core16_call = tf.function(lambda z, c: core16(z, c, training=False))
        candidates["core forward, bfloat16 core (before)"] = lambda: core16_call(
            features["res5"], context
        )
        core32_call = tf.function(lambda z, c: model.core(z, c, training=False))
        z32, c32 = tf.cast(features["res5"], "float32"), tf.cast(context, "float32")
        candidates["core forward, float32 core"] = lambda: core32_call(z32, c32)
    return with_peaks(candidates, repeats)


def compiled(model):
    """`model` compiled with Adam and run once (traced, optimizer built)."""
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
    return model


def cached_feature_step(model, features, targets):
    """A stage-2 step that starts from cached res4/res5 maps.

    Returns:
        A zero-argument callable running one optimiser step of `model`
        (compiled, and its optimizer built by one `train_on_batch`) on the
        part after the backbone.

    Raises:
        ValueError: the model's backbone features change in training (not
            frozen, or `frozen_batchnorm="drift"`), so cached ones are stale.
    """
    if not model.backbone_features_are_fixed:
        raise ValueError(
            f"cached backbone features are stale for this model (freeze_backbone={model.freeze_backbone}, "
            f"frozen_batchnorm={model.frozen_batchnorm!r}): training changes them"
        )
    optimizer = model.optimizer
    variables = model.trainable_variables

    @tf.function
    def step(res4, res5):
        with tf.GradientTape() as tape:
            outputs = model.call_on_features(res4, res5, training=True)
            loss = model.compute_loss_terms(targets, outputs)["loss"]
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    return lambda: step(features["res4"], features["res5"])


def training_figures(preset, policy, args, num_classes):
    """Seconds per clip of the training steps under `policy`, timed round-robin."""
    video_shape = preset_video_shape(preset)
    batch, batch2 = args.train_batch_size, args.stage2_batch_size
    inputs = {"video": tf.constant(structured_clips(batch, video_shape, seed=1))}
    targets = random_targets(batch, video_shape, num_classes, seed=1)
    inputs2 = {"video": tf.constant(structured_clips(batch2, video_shape, seed=2))}
    targets2 = random_targets(batch2, video_shape, num_classes, seed=2)
    stage1 = compiled(build(preset, policy, variant="global_pose"))
    stage2 = compiled(build(preset, policy, variant="glimpse_clouds", freeze_backbone=True))
    full = compiled(build(preset, policy, variant="glimpse_clouds"))
    forward = tf.function(lambda x: stage2(x, training=False))
    stage2.train_on_batch(inputs2, targets2)  # builds the optimizer
    normalised = tf.cast(normalise_video(inputs2["video"]), stage2.backbone.compute_dtype)
    features = stage2.backbone(normalised, training=False)
    after = tf.function(lambda a, b: stage2.call_on_features(a, b, training=False))
    steps = {
        f"stage-1 step (batch {batch})": (batch, lambda: stage1.train_on_batch(inputs, targets)),
        f"end-to-end step (batch {batch})": (batch, lambda: full.train_on_batch(inputs, targets)),
        f"stage-2 step (batch {batch2})": (batch2, lambda: stage2.train_on_batch(inputs2, targets2)),
        f"forward (batch {batch2})": (batch2, lambda: forward(inputs2["video"])),
        f"after-backbone forward (batch {batch2})": (
            batch2,
            lambda: after(features["res4"], features["res5"]),
        ),
        f"stage-2 step on cached features (batch {batch2})": (
            batch2,
            cached_feature_step(stage2, features, targets2),
        ),
    }
    best, peaks = with_peaks({name: function for name, (_, function) in steps.items()}, args.train_repeats)
    return {name: best[name] / size for name, (size, _) in steps.items()}, peaks


def calibrate_batchnorm(model, clips):
    """Sets every backbone BatchNorm's moving statistics to those of `clips`.

    A randomly initialised backbone has moving mean 0 and variance 1 while
    its activations grow through the residual stages, so in inference mode
    its features are far from those of a trained network (which the moving
    statistics normalise). One training-mode pass with momentum 0 makes the
    statistics those of the benchmark clips, as a trained network's are of
    its data.
    """
    layers = [layer for layer in model.backbone._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    try:
        normalised = tf.cast(normalise_video(tf.constant(clips)), model.backbone.compute_dtype)
        model.backbone(normalised, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


def fit_prototype_classifier(model, clips):
    """Sets the worker classifier so clip k is confidently class k.

    Class k's weights are the unit direction of clip k's float32 worker
    states (averaged over time, centred on the mean over the clips) and its
    bias removes that mean: logit_j(clip k) = a_k . a_j / |a_j| / C, which
    Cauchy-Schwarz maximises at j = k; the other classes get zero logits.
    This gives the predictions real margins that depend on the features of
    each clip, so agreement under bfloat16 tests whether the features keep
    the clips apart (a randomly initialised head has near-tied logits).
    """
    video = tf.constant(clips)
    features = model.backbone(tf.cast(normalise_video(video), model.backbone.compute_dtype), training=False)
    context = tf.reduce_mean(features["res4"], axis=(2, 3))
    states = model.core(features["res5"], context, training=False)["worker_states"]
    means = np.mean(states.numpy().astype("float64"), axis=1)  # (clips, C, U)
    centre = means.mean(axis=0)
    directions = means - centre
    directions /= np.linalg.norm(directions.reshape(len(clips), -1), axis=1)[:, None, None]
    kernel = np.zeros(model.worker_classifier.kernel.shape)
    bias = np.zeros(model.worker_classifier.bias.shape)
    for index in range(len(clips)):
        kernel[:, :, index] = directions[index]
        bias[:, index] = -np.sum(centre * directions[index], axis=-1)
    model.worker_classifier.kernel.assign(kernel.astype("float32"))
    model.worker_classifier.bias.assign(bias.astype("float32"))


def agreement(preset, clips, float32_model):
    """Predicted-class agreement of mixed_bfloat16 with float32 (same weights).

    The bfloat16 model is compared as built and BN-folded (what the export
    and the evaluation run).

    Returns:
        (agree, agree_folded, count, min_margin, max_logit_difference): the
        float32 top-1 minus top-2 logit margin (smallest over clips) and the
        largest |logit difference| between the policies (either form).
    """
    mixed = build(preset, "mixed_bfloat16")
    mixed.set_weights(float32_model.get_weights())
    mixed_folded = fold_model_batch_norm(mixed)

    def logits_of(model):
        forward = tf.function(lambda x: model(x, training=False)["logits"])
        return np.concatenate([forward(clips[i : i + 1]).numpy() for i in range(len(clips))])

    f32_logits = logits_of(float32_model)
    ordered = np.sort(f32_logits, axis=-1)
    margin = float(np.min(ordered[:, -1] - ordered[:, -2]))
    agrees, difference = [], 0.0
    for bf16_logits in (logits_of(mixed), logits_of(mixed_folded)):
        agrees.append(int(np.sum(np.argmax(f32_logits, -1) == np.argmax(bf16_logits, -1))))
        difference = max(difference, float(np.max(np.abs(f32_logits - bf16_logits))))
    return agrees[0], agrees[1], len(clips), margin, difference


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(MODEL_PRESETS), default="resnet50")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds of the inference figures (best)")
    parser.add_argument("--train-repeats", type=int, default=2, help="timed training steps per figure (best)")
    parser.add_argument("--train-batch-size", type=int, default=2, help="clips per stage-1/end-to-end step")
    parser.add_argument("--stage2-batch-size", type=int, default=4, help="clips per stage-2 step")
    parser.add_argument("--agreement-clips", type=int, default=8)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)

    video_shape = preset_video_shape(args.preset)
    kwargs = MODEL_PRESETS[args.preset]["kwargs"]
    print(
        f"preset {args.preset}: clip {video_shape}, backbone {kwargs['backbone']}, "
        f"G={kwargs['num_glimpses']} C={kwargs['num_workers']}; TF {tf.__version__}, "
        f"Keras {keras.__version__}, {__import__('os').cpu_count()} CPUs; {load_average()}",
        flush=True,
    )
    clips = structured_clips(args.agreement_clips, video_shape)
    reference = build(args.preset, "float32")
    spec = tf.TensorSpec((1,) + video_shape, tf.uint8)
    concrete = tf.function(lambda x: reference(x, training=False)).get_concrete_function(spec)
    model_gflop = graph_gflops(concrete)
    backbone_concrete = tf.function(lambda x: reference.backbone(x, training=False)).get_concrete_function(
        tf.TensorSpec((1,) + video_shape, tf.float32)
    )
    backbone_gflop = graph_gflops(backbone_concrete)
    print(
        f"analytic FLOPs per clip forward: {model_gflop:.2f} GFLOP "
        f"(backbone {backbone_gflop:.2f}, after the backbone {model_gflop - backbone_gflop:.3f})",
        flush=True,
    )
    calibrate_batchnorm(reference, clips)
    agree_random = agreement(args.preset, clips, reference)
    fit_prototype_classifier(reference, clips)
    agree = agreement(args.preset, clips, reference)
    del reference
    gc.collect()

    summary = {}
    for policy in args.policies.split(","):
        model = build(args.preset, policy)
        inference, peaks = inference_figures(model, clips[:1], args.repeats)
        del model
        gc.collect()
        peak32, peak = peaks["float32"], peak_for_policy(peaks, policy)
        print(f"\n[{policy}] {load_average()}")
        print_peaks(peaks)
        print("  inference, one clip (batch 1): seconds, GFLOP/s, x float32 peak, x policy peak")
        for name, seconds in inference.items():
            gflop = backbone_gflop if name.startswith("backbone") else model_gflop
            if name.startswith("after") or name.startswith("core"):
                print(
                    f"    {name:42s} {seconds:8.4f} s  = {seconds / inference['backbone forward']:.3f} x backbone, "
                    f"{seconds / inference['backbone forward, BN folded']:.3f} x folded backbone"
                )
                continue
            rate = gflop / seconds
            print(
                f"    {name:42s} {seconds:8.4f} s  {rate:6.0f} GFLOP/s  "
                f"{rate / peak32:.2f} x f32 peak  {rate / peak:.2f} x {policy} peak"
            )
        summary[policy] = dict(inference, peak32=peak32)
        if args.skip_training:
            continue
        training, peaks = training_figures(args.preset, policy, args, kwargs["num_classes"])
        gc.collect()
        print(f"  training, seconds per clip ({load_average()}):")
        print_peaks(peaks)
        for name, seconds in training.items():
            line = f"    {name:48s} {seconds:8.4f} s/clip"
            if name.startswith(("stage-1", "end-to-end")):
                rate = 3 * backbone_gflop / seconds
                line += f"  {rate:6.0f} GFLOP/s (3x forward)  {rate / peaks['float32']:.2f} x f32 peak"
            print(line)
        step2 = next(v for k, v in training.items() if k.startswith("stage-2 step ("))
        forward4 = next(v for k, v in training.items() if k.startswith("forward ("))
        cached = next(v for k, v in training.items() if "cached" in k)
        after4 = next(v for k, v in training.items() if k.startswith("after-backbone"))
        print(
            f"  stage-2 step / forward at the same batch: {step2 / forward4:.2f}; "
            f"cached-feature stage-2 step / stage-2 step: {cached / step2:.3f}; "
            f"after-backbone / backbone forward at batch {args.stage2_batch_size}: "
            f"{after4 / (forward4 - after4):.3f}"
        )

    print("\nsummary")
    if "float32" in summary:
        f32 = summary["float32"]
        ratio = model_gflop / f32["full forward"] / f32["peak32"]
        folded = model_gflop / f32["full forward, BN folded"] / f32["peak32"]
        print(f"  float32 inference: {ratio:.2f} of the float32 peak (BN folded: {folded:.2f}); target >= 0.70")
    if "mixed_bfloat16" in summary and "float32" in summary:
        bf = summary["mixed_bfloat16"]
        print(
            f"  mixed_bfloat16 / float32 inference time: {bf['full forward'] / f32['full forward']:.2f} "
            f"(BN folded: {bf['full forward, BN folded'] / f32['full forward, BN folded']:.2f})"
        )
    for policy, figures in summary.items():
        after = figures["after-backbone forward"]
        line = (
            f"  {policy}: after-backbone / backbone forward = {after / figures['backbone forward']:.3f} "
            f"(folded backbone: {after / figures['backbone forward, BN folded']:.3f}; target < 0.10)"
        )
        floor = figures.get("after-backbone weight-read floor")
        if floor:
            line += (
                f"; its weight-read floor alone = {floor / figures['backbone forward, BN folded']:.3f} "
                f"x folded backbone, after-backbone / floor = {after / floor:.2f}"
            )
        print(line)
    for label, figures in (("random head", agree_random), ("prototype head", agree)):
        print(
            f"  predicted class, mixed_bfloat16 vs float32 (same weights, {label}): {figures[0]}/{figures[2]} "
            f"clips agree (BN-folded bfloat16: {figures[1]}/{figures[2]}); smallest float32 top-1 margin "
            f"{figures[3]:.3g}, largest |logit difference| {figures[4]:.3g}"
        )


if __name__ == "__main__":
    main()
