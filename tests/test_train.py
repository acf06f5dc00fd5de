"""Training on the default synthetic task, and the frame-by-frame copy of a trained model."""

import json
import subprocess
import sys

import numpy as np
import tensorflow as tf

import models
from host.manifest import sha256_of
from models.quantization import QUANTIZER_NAMES
from models.train import build_dense_classifier, build_tt_classifier, streaming_copy


def test_default_task_reaches_90_percent_with_far_fewer_parameters(tmp_path):
    command = [sys.executable, "-m", "models.train", "--models", "tt_lstm", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "train_report.json").read_text())
    tt = report["models"]["tt_lstm"]
    assert tt["held_out_accuracy"] >= 0.90
    assert tt["sha256"] == sha256_of(tt["path"])  # what overlay build checks before it takes the data set
    dense_params = build_dense_classifier(8, 256, 4).count_params()
    assert tt["params"] * 10 < dense_params
    assert "epoch" in result.stdout  # the progress bar
    model = tf.keras.models.load_model(tt["path"], custom_objects=models.custom_objects())
    assert model.get_layer("tt_lstm").cell.fixed_types.keys() == set(QUANTIZER_NAMES)


def test_streaming_copy_follows_the_whole_clip_model(rng):
    model = build_tt_classifier(5, 256, 4)
    clip = rng.uniform(0, 1, (1, 5, 256)).astype(np.float32)
    stream = streaming_copy(model)
    stream.reset_states()
    outputs = [stream.predict(clip[:, t : t + 1], verbose=0) for t in range(5)]
    np.testing.assert_array_equal(outputs[-1], model.predict(clip, verbose=0))


def test_streaming_copy_serializes_without_initializer_warnings():
    """``overlay build --stream`` converts the copy (hls4ml serializes it): its initializers are
    Keras', as a loaded model's are, so Keras does not warn about tf_keras initializers."""
    import warnings

    stream = streaming_copy(build_tt_classifier(5, 16, 4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stream.to_json()
    assert not [warning for warning in caught if "initializers.serialize" in str(warning.message)]
