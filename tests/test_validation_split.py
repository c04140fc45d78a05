"""The validation split carved from the training subjects
(`data.validation_fraction`, `Experiment.validation_holdout`): whole subjects,
never test videos, the same ones for every job, and the datasets and counts
that follow from it."""

import pytest

from glimpse_keras import config as config_lib
from glimpse_keras.data import pipeline, preparation
from glimpse_keras.experiment import VALIDATION_SPLIT, Experiment

OVERRIDES = ["data.dataset=synthetic", "data.synthetic_preset=tiny", "data.num_frames=4",
             "data.image_size=64", "data.stored_size=72", "model.preset=tiny", "model.num_classes=60"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("validation_split"))
    config = config_lib.load_config(None, OVERRIDES + ["data.validation_fraction=0.3"])
    return Experiment(config).prepare_data(cache)


def _experiment(converted, *overrides):
    return Experiment(config_lib.load_config(None, OVERRIDES + list(overrides)), converted)


def _ids(dataset):
    return sorted(video_id.decode() for _, targets in dataset.as_numpy_iterator()
                  for video_id in targets["video_id"])


def test_whole_training_subjects_are_held_out(converted):
    experiment = _experiment(converted, "data.validation_fraction=0.3")
    held = experiment.validation_holdout()
    identities = pipeline.read_identities(preparation.split_files(converted, experiment.config.data, "train"))
    held_subjects = {subject for video_id, _, subject in identities if video_id in held}
    kept_subjects = {subject for video_id, _, subject in identities if video_id not in held}
    assert held and held_subjects and kept_subjects and not held_subjects & kept_subjects
    assert not held & set(pipeline.read_split_index(converted, "xsub", "test")["video_ids"])
    # The same subjects for every job on the same data.
    assert _experiment(converted, "data.validation_fraction=0.3").validation_holdout() == held
    assert experiment.validation_split() == VALIDATION_SPLIT
    total = pipeline.count_split_videos(converted, "xsub", "train")
    assert experiment.count_videos("train") + experiment.count_videos(VALIDATION_SPLIT) == total
    assert experiment.count_videos(VALIDATION_SPLIT) == len(held)
    # The validation clips are the held-out videos, the training clips the others.
    assert _ids(experiment.test_dataset(VALIDATION_SPLIT, clips=1)) == sorted(held)
    files, _, exclude = experiment._split_source("train")
    rest = pipeline.build_dataset(files, "test", num_frames=4, image_size=64, clips_per_video=1,
                                  exclude_ids=exclude)
    assert set(_ids(rest)) == {video_id for video_id, _, _ in identities} - held
    assert next(iter(experiment.validation_dataset(2)))[0]["video"].shape[0] == 2


def test_without_a_fraction_the_test_split_validates(converted):
    experiment = _experiment(converted)
    assert experiment.validation_holdout() is None and experiment.validation_split() == "test"
    with pytest.raises(preparation.DataDirError, match="set data.validation_fraction"):
        experiment.split_files(VALIDATION_SPLIT)
    with pytest.raises(config_lib.ConfigError, match="data.validation_fraction"):
        config_lib.load_config(None, ["data.validation_fraction=0.8"])
