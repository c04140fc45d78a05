"""Tests for the glimpse visualisation: box geometry, drawing and the command line."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from glimpse_keras import callbacks
from glimpse_keras import config as config_lib
from glimpse_keras import runs
from glimpse_keras.experiment import Experiment
from glimpse_keras.data import schema
from glimpse_keras.data.errors import VideoDecodeError
from glimpse_keras.models.presets import build_model_from_preset
from glimpse_keras.visualize import (
    GLIMPSE_PALETTE,
    VisualizationInputError,
    border_thickness,
    draw_clip_strip,
    draw_frames,
    glimpse_colour,
    joint_to_pixel,
    location_to_box,
    upscale_factor,
)
from glimpse_keras.cli import visualize as cli
from glimpse_keras.visualize import clips
from glimpse_keras.visualize.drawing import (
    FRAME_GAP,
    PANEL_HEADER_HEIGHT,
    PANEL_ROW_HEIGHT,
    PERSON_COLOURS,
    panel_height,
)
from tests.data.test_video import write_avi

T, SIZE, STORED = 4, 64, 72
SAMPLE_ID = "S001C001P001R001A003"
OTHER_ID = "S001C002P003R001A001"


# === Geometry ===


@pytest.mark.parametrize(
    "location, height, width, grid, expected",
    [
        # span [16, 48) -> pixels 16..47 on both axes
        ([0.0, 0.0, 0.5, 0.5], 64, 64, None, (16, 16, 47, 47)),
        # x: [(0.25+1)/2*80, (0.75+1)/2*80] = [50, 70] -> 50..69;
        # y: [(-0.75+1)/2*40, (0.25+1)/2*40] = [5, 25] -> 5..24
        ([0.5, -0.25, 0.25, 0.5], 40, 80, None, (50, 5, 69, 24)),
        # x: [70, 120] clipped to the last column 99; y: [25, 75] -> 25..74
        ([0.9, 0.0, 0.5, 0.5], 100, 100, None, (70, 25, 99, 74)),
        # span [20.6, 21.0] holds no pixel centre: the pixel of its midpoint 20.8
        ([-0.35, -0.35, 0.00625, 0.00625], 64, 64, None, (20, 20, 20, 20)),
        # 2x2 res5 grid: -1 / +1 are the cell centres 16 and 48
        ([0.0, 0.0, 1.0, 1.0], 64, 64, (2, 2), (16, 16, 47, 47)),
        # cells 0.25 .. 0.75 -> pixels (0.75*32, 1.25*32) = (24, 40) -> 24..39
        ([0.0, 0.0, 0.5, 0.5], 64, 64, (2, 2), (24, 24, 39, 39)),
    ],
)
def test_location_to_box_hand_computed(location, height, width, grid, expected):
    assert location_to_box(location, height, width, grid) == expected


def test_location_to_box_rejects_bad_locations():
    with pytest.raises(VisualizationInputError, match="4 finite"):
        location_to_box([0.0, 0.0, 0.5], 64, 64)
    with pytest.raises(VisualizationInputError, match="4 finite"):
        location_to_box([np.nan, 0.0, 0.5, 0.5], 64, 64)


def test_joint_pixels_and_upscale_factor():
    assert joint_to_pixel((0.0, 0.0), 64, 64) == (32, 32)
    assert joint_to_pixel((-1.0, 1.0), 40, 80) == (0, 39)  # clipped into the image
    assert joint_to_pixel((0.5, -0.5), 40, 80) == (60, 10)
    assert upscale_factor(64, 64, 192) == 3
    assert upscale_factor(64, 100, 150) == 3  # ceil(150 / 64)
    assert upscale_factor(224, 224, 192) == 1


def test_glimpse_colours_are_fixed_and_distinct():
    assert glimpse_colour(0) == (230, 25, 75)
    assert [glimpse_colour(i) for i in range(10)] == list(GLIMPSE_PALETTE)
    colours = [glimpse_colour(i) for i in range(16)]
    assert len(set(colours)) == 16
    assert colours == [glimpse_colour(i) for i in range(16)]


# === Drawing ===


def border_mask(box, height, width, thickness):
    """Pixels of the box outline: the box minus its interior shrunk by `thickness`."""
    x0, y0, x1, y1 = box
    mask = np.zeros((height, width), bool)
    mask[y0 : y1 + 1, x0 : x1 + 1] = True
    mask[y0 + thickness : y1 - thickness + 1, x0 + thickness : x1 - thickness + 1] = False
    return mask


def frame_region(strip, t, height, width):
    left = t * (width + FRAME_GAP)
    return strip[:height, left : left + width]


def check_boxes(strip, video, locations, min_side=192):
    """Asserts every glimpse outline is where `location_to_box` puts it and the
    rest of each frame is the (upscaled) input. Returns the number of outline
    pixels of each glimpse still visible (not covered by later glimpses)."""
    frames, height, width, _ = video.shape
    factor = upscale_factor(height, width, min_side)
    shown_h, shown_w = height * factor, width * factor
    thickness = border_thickness(min(shown_h, shown_w))
    visible = np.zeros(locations.shape[1], int)
    for t in range(frames):
        drawn = frame_region(strip, t, shown_h, shown_w)
        original = np.repeat(np.repeat(video[t], factor, 0), factor, 1)
        covered = np.zeros((shown_h, shown_w), bool)
        for glimpse in reversed(range(locations.shape[1])):
            box = location_to_box(locations[t, glimpse], shown_h, shown_w)
            mask = border_mask(box, shown_h, shown_w, thickness)
            own = mask & ~covered
            assert np.all(drawn[own] == glimpse_colour(glimpse)), (t, glimpse, box)
            visible[glimpse] += own.sum()
            covered |= mask
        np.testing.assert_array_equal(drawn[~covered], original[~covered])
    return visible


def test_strip_boxes_follow_the_tiny_models_locations():
    model = build_model_from_preset("tiny", num_classes=5)
    video = np.random.default_rng(0).integers(0, 256, (1, T, SIZE, SIZE, 3), np.uint8)
    outputs = model(video, training=False)
    locations = np.asarray(outputs["locations"])[0]
    assignments = np.asarray(outputs["assignments"])[0]
    strip = draw_clip_strip(video[0], locations, assignments)
    factor = upscale_factor(SIZE, SIZE)
    assert strip.shape == (SIZE * factor + panel_height(3), T * SIZE * factor + (T - 1) * FRAME_GAP, 3)
    assert strip.dtype == np.uint8
    visible = check_boxes(strip, video[0], locations)
    assert visible[-1] > 0


def test_strip_boxes_at_hand_placed_locations_and_float_video():
    rng = np.random.default_rng(1)
    video = rng.integers(0, 256, (2, 40, 56, 3), np.uint8)
    locations = np.array(
        [
            [[-0.5, -0.5, 0.3, 0.3], [0.5, 0.4, 0.2, 0.4], [0.0, 0.0, 0.9, 0.95]],
            [[0.9, -0.9, 0.5, 0.5], [-0.6, 0.6, 0.1, 0.1], [0.1, -0.1, 0.2, 0.3]],
        ]
    )
    assignments = rng.random((2, 4, 3))
    strip = draw_clip_strip(video.astype(np.float32), locations, assignments)
    visible = check_boxes(strip, video, locations)
    assert np.all(visible > 100)  # every outline shows
    # frames are 40 x 56: upscaled x5 so the short side reaches 192
    assert strip.shape[:2] == (200 + panel_height(3), 2 * 280 + FRAME_GAP)


def test_sampled_region_boxes_use_the_feature_grid():
    video = np.zeros((1, 64, 64, 3), np.uint8)
    locations = np.array([[[0.0, 0.0, 0.5, 0.5]]])
    image = draw_frames(video, locations, np.ones((1, 1, 1)), feature_grid=(2, 2), min_frame_side=64)[0]
    colour = glimpse_colour(0)
    # cells 0.25..0.75 of a 2-cell map -> pixels 24..39, 1-pixel line at 64 px
    assert tuple(image[24, 24]) == colour and tuple(image[39, 39]) == colour
    assert tuple(image[23, 24]) == (0, 0, 0) and tuple(image[25, 25]) == (0, 0, 0)


def test_pose_joints_are_drawn_where_they_are_and_masked_ones_are_not():
    video = np.zeros((1, 64, 64, 3), np.uint8)
    pose = np.array([[[[0.5, -0.5], [-0.5, 0.5], [0.0, 0.0]], [[0.25, 0.25], [0, 0], [0, 0]]]])
    mask = np.array([[[1, 0, 1], [1, 0, 0]]], np.float32)
    image = draw_frames(
        video, np.zeros((1, 0, 4)), np.zeros((1, 2, 0)), pose, mask, min_frame_side=64
    )[0]
    assert tuple(image[16, 48]) == PERSON_COLOURS[0]  # (x, y) = (0.5, -0.5)
    assert tuple(image[32, 32]) == PERSON_COLOURS[0]
    assert tuple(image[40, 40]) == PERSON_COLOURS[1]  # person 1 at (0.25, 0.25)
    assert tuple(image[48, 16]) == (0, 0, 0)  # masked joint
    assert image[:64].any(axis=-1).sum() < 3 * 30  # three small dots, no bones for J=3


def test_panel_bars_show_the_assignment_weights():
    video = np.zeros((1, 64, 64, 3), np.uint8)
    locations = np.zeros((1, 2, 4))
    assignments = np.array([[[0.25, 0.1], [0.75, 0.5], [0.0, 0.4]]])  # (T, C=3, G=2)
    image = draw_frames(video, locations, assignments, min_frame_side=64)[0]
    panel = image[64:]
    usable = PANEL_ROW_HEIGHT - 4
    for glimpse, winner in ((0, 1), (1, 1)):
        row = panel[PANEL_HEADER_HEIGHT + glimpse * PANEL_ROW_HEIGHT :][:PANEL_ROW_HEIGHT]
        bars = row[:, 40:]  # right of the swatch and label
        coloured = np.all(bars == glimpse_colour(glimpse), axis=-1).sum()
        assert coloured == 5 * round(assignments[0, winner, glimpse] * usable)


def test_bad_shapes_name_the_array():
    video = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(VisualizationInputError, match="locations"):
        draw_clip_strip(video, np.zeros((3, 2, 4)), np.zeros((2, 2, 2)))
    with pytest.raises(VisualizationInputError, match="assignments"):
        draw_clip_strip(video, np.zeros((2, 2, 4)), np.zeros((2, 2, 3)))
    with pytest.raises(VisualizationInputError, match="pose_mask"):
        draw_clip_strip(
            video, np.zeros((2, 2, 4)), np.zeros((2, 2, 2)), np.zeros((2, 1, 3, 2)), np.zeros((2, 3))
        )
    with pytest.raises(VisualizationInputError, match="video"):
        draw_clip_strip(video[0], np.zeros((2, 2, 4)), np.zeros((2, 2, 2)))


def test_callback_overlay_images_use_draw_clip_strip():
    rng = np.random.default_rng(2)
    inputs = {"video": rng.integers(0, 256, (2, T, SIZE, SIZE, 3), np.uint8)}
    targets = {"pose": np.zeros((2, T, 2, 25, 2), np.float32), "pose_mask": np.zeros((2, T, 2, 25))}
    outputs = {"locations": rng.uniform(-0.5, 0.5, (2, T, 3, 4)), "assignments": rng.random((2, T, 3, 3))}
    images = callbacks._overlay_images(draw_clip_strip, inputs, targets, outputs, 2)
    expected = draw_clip_strip(inputs["video"][1], outputs["locations"][1], outputs["assignments"][1])
    assert images.shape == (2,) + expected.shape
    np.testing.assert_allclose(images[1], expected / 255.0, atol=1e-6)


# === Command line ===


def write_converted(directory):
    """Two converted videos (72 x 72 frames) and an xsub test index."""
    import cv2

    rng = np.random.default_rng(3)
    records = []
    for index, video_id in enumerate((OTHER_ID, SAMPLE_ID)):
        frames = [rng.integers(0, 256, (STORED, STORED, 3), np.uint8) for _ in range(6)]
        uv = np.zeros((6, 2, 25, 2), np.float32)
        mask = np.zeros((6, 2, 25), bool)
        uv[:, 0, 0] = (0.5, 0.5)  # stored (36, 36) -> crop (32, 32) -> (0, 0)
        uv[:, 0, 1] = (0.25, 0.75)  # stored (18, 54) -> crop (14, 50)
        mask[:, 0, :2] = True
        jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes() for f in frames]
        records.append(
            schema.VideoRecord(
                video_id=video_id, dataset="ntu", label=2 - 2 * index, subject=1, camera=1,
                setup=1, replication=1, num_video_frames=6, num_skeleton_frames=6,
                jpeg_frames=jpegs, uv=uv, mask=mask, height=STORED, width=STORED,
            )
        )
    os.makedirs(os.path.join(directory, "splits", "xsub"))
    with tf.io.TFRecordWriter(os.path.join(directory, "shard-00000.tfrecord")) as writer:
        for record in records:
            writer.write(schema.serialize_video_record(record))
    with open(os.path.join(directory, "splits", "xsub", "test.json"), "w") as handle:
        json.dump({"files": ["shard-00000.tfrecord"], "num_videos": 2}, handle)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished one-stage run of the tiny model (untrained weights)."""
    root = tmp_path_factory.mktemp("vis")
    converted = root / "converted"
    write_converted(str(converted))
    config = config_lib.load_config(
        overrides=[
            "model.preset=tiny",
            "model.num_classes=5",
            f"data.num_frames={T}",
            f"data.image_size={SIZE}",
            f"data.stored_size={STORED}",
            "data.dataset=ntu",
            f"data.data_dir={converted}",
            "train.stages=[{name: glimpses, variant: glimpse_clouds, epochs: 1}]",
        ]
    )
    run = root / "run"
    stage = config.train.stages[0]
    model = Experiment(config).build_stage_model(stage, tf.distribute.get_strategy(), compile_model=False)
    os.makedirs(run / stage.name)
    model.save_weights(str(run / stage.name / runs.FINAL))
    config_lib.save_config(config, str(run / "config.yaml"))
    video_path = root / "clip.avi"
    # 12 flat frames of grey level 20 * i, 96 wide and 80 high
    write_avi(video_path, [np.full((80, 96, 3), 20 * i, np.uint8) for i in range(12)], rate=25)
    return {"run": str(run), "model": model, "config": config, "video": str(video_path), "root": root}


def test_video_file_clip_takes_bin_centre_frames(tiny_run):
    clip = clips.clip_from_video_file(tiny_run["video"], T, STORED, SIZE)
    assert clip.video.shape == (T, SIZE, SIZE, 3) and clip.video.dtype == np.uint8
    np.testing.assert_array_equal(clip.frame_indices, [1, 4, 7, 10])  # floor((t + 0.5) * 12 / 4)
    # MPEG-4 shifts flat grey levels a little; neighbouring frames differ by 20.
    np.testing.assert_allclose(clip.video.mean(axis=(1, 2, 3)), [20, 80, 140, 200], atol=6)
    assert clip.pose is None


def test_cli_png_matches_the_library_rendering(tiny_run, capsys):
    output = tiny_run["root"] / "file.png"
    assert cli.main(["--run", tiny_run["run"], "--video", tiny_run["video"], "--output", str(output)]) == 0
    clip = clips.clip_from_video_file(tiny_run["video"], T, STORED, SIZE)
    outputs = cli.predict(tiny_run["model"], clip.video)
    titles = [f"t={t} f={f}" for t, f in enumerate((1, 4, 7, 10))]
    expected = draw_clip_strip(clip.video, outputs["locations"], outputs["assignments"], frame_titles=titles)
    written = np.asarray(Image.open(output).convert("RGB"))
    np.testing.assert_array_equal(written, expected)
    check_boxes(written, clip.video, outputs["locations"])
    printed = capsys.readouterr().out
    assert re.search(r"clip\.avi: predicted \d+ \w", printed)  # the class index and its name
    assert "attention diagnostics of 1 clip(s)" in printed
    assert re.search(r"input dependence.*n/a", printed)  # needs two clips or more
    assert not [name for name in os.listdir(tiny_run["root"]) if name.endswith(".tmp")]


def test_cli_gif_from_sample_id_draws_ground_truth_joints(tiny_run):
    output = tiny_run["root"] / "sample.gif"
    code = cli.main(
        ["--run", tiny_run["run"], "--video", SAMPLE_ID, "--output", str(output), "--min-frame-side", "64"]
    )
    assert code == 0
    clip = clips.clip_from_sample_id(SAMPLE_ID, tiny_run["config"].data.data_dir, tiny_run["config"].data)
    assert clip.label == 0
    np.testing.assert_allclose(clip.pose[:, 0, 0], np.zeros((T, 2)), atol=1e-6)
    np.testing.assert_allclose(clip.pose[:, 0, 1], np.tile([[-0.5625, 0.5625]], (T, 1)), atol=1e-6)
    np.testing.assert_array_equal(clip.pose_mask[:, 0, :3], np.tile([[1, 1, 0]], (T, 1)))
    gif = Image.open(output)
    assert gif.n_frames == T
    outputs = cli.predict(tiny_run["model"], clip.video)
    frames = draw_frames(
        clip.video, outputs["locations"], outputs["assignments"], clip.pose, clip.pose_mask,
        min_frame_side=64, frame_titles=[f"t={t} f={f}" for t, f in enumerate(clip.frame_indices)],
    )
    gif.seek(0)
    assert gif.size == (frames[0].shape[1], frames[0].shape[0])
    first = np.asarray(gif.convert("RGB")).astype(int)
    # GIF quantises colours; the joint at the frame centre (0, 0) shows the person colour
    # unless a box line crosses it.
    assert np.abs(first - frames[0]).mean() < 8
    without_pose = draw_frames(clip.video, outputs["locations"], outputs["assignments"], min_frame_side=64)
    assert np.any(frames[0][:SIZE] != without_pose[0][:SIZE])


def test_cli_draws_several_clips_one_row_each_with_their_diagnostics(tiny_run, capsys):
    output = tiny_run["root"] / "two.png"
    code = cli.main(["--run", tiny_run["run"], "--video", tiny_run["video"], SAMPLE_ID, "--output", str(output)])
    assert code == 0
    written = np.asarray(Image.open(output).convert("RGB"))
    rows = []
    for clip in (clips.clip_from_video_file(tiny_run["video"], T, STORED, SIZE),
                 clips.clip_from_sample_id(SAMPLE_ID, tiny_run["config"].data.data_dir, tiny_run["config"].data)):
        outputs = cli.predict(tiny_run["model"], clip.video)
        titles = [f"t={t} f={int(f)}" for t, f in enumerate(clip.frame_indices)]
        rows.append(draw_clip_strip(clip.video, outputs["locations"], outputs["assignments"], clip.pose,
                                    clip.pose_mask, frame_titles=titles))
    assert written.shape[0] == rows[0].shape[0] + rows[1].shape[0] + FRAME_GAP
    np.testing.assert_array_equal(written[: rows[0].shape[0]], rows[0])
    np.testing.assert_array_equal(written[-rows[1].shape[0]:], rows[1])
    printed = capsys.readouterr().out
    assert "attention diagnostics of 2 clip(s)" in printed
    # Two clips: the input dependence is a number; the video file has no joints, so no on-body rate.
    assert re.search(r"input dependence.* \d+\.\d\d$", printed, re.MULTILINE)
    assert re.search(r"of a visible joint +n/a", printed)


def test_cli_errors_name_the_problem(tiny_run, capsys):
    root = tiny_run["root"]
    assert cli.main(["--run", tiny_run["run"], "--video", SAMPLE_ID, "--output", str(root / "x.jpg")]) == 1
    assert ".png" in capsys.readouterr().err
    missing_run = ["--run", str(root / "nowhere"), "--video", SAMPLE_ID, "--output", str(root / "x.png")]
    assert cli.main(missing_run) == 1
    assert "config.yaml" in capsys.readouterr().err
    with pytest.raises(clips.UnknownSampleError, match="S009C001P001R001A001"):
        cli.load_clip("S009C001P001R001A001", Experiment(tiny_run["config"]), tiny_run["run"])
    with pytest.raises(cli.VisualizeError, match="missing.avi"):
        cli.load_clip(str(root / "missing.avi"), Experiment(tiny_run["config"]), tiny_run["run"])
    broken = root / "broken.avi"
    broken.write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoDecodeError, match="broken.avi"):
        cli.load_clip(str(broken), Experiment(tiny_run["config"]), tiny_run["run"])
    assert not (root / "x.png").exists()
