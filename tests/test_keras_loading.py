"""``.keras`` files through plain ``tf.keras.models.load_model`` and through ``models.load_model``.

A plain load used to spin forever (tf_keras' ``InputLayer`` in a Keras 2.15 graph), so every load runs in a
subprocess that fails the test when it outlives ``TIMEOUT``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import small_classifier

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 180  # seconds; a load takes about 10 s, most of it importing TensorFlow

# argv: model path, "plain" or "models", input .npy, output .npy; prints the loaded model as JSON facts.
LOAD = """
import json
import sys

import numpy as np
import tensorflow as tf

import models

path, how, x_path, y_path = sys.argv[1:]
if how == "plain":
    model = tf.keras.models.load_model(path, custom_objects=models.custom_objects())
else:
    model = models.load_model(path)
np.save(y_path, model.predict(np.load(x_path), verbose=0))
optimizer = model.optimizer
print(json.dumps({
    "layers": json.loads(model.to_json())["config"]["layers"],
    "optimizer": None if optimizer is None else type(optimizer).__name__,
    "keras_optimizer": isinstance(optimizer, tf.keras.optimizers.Optimizer),
}))
"""


def load_in_subprocess(path, how, x, tmp_path):
    """Load ``path`` the ``how`` way in a fresh interpreter; the completed process and its predictions for ``x``."""
    np.save(tmp_path / "x.npy", x)
    command = [sys.executable, "-c", LOAD, str(path), how, str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{how} load of {path.name} did not return within {TIMEOUT} s")
    predictions = np.load(tmp_path / "y.npy") if result.returncode == 0 else None
    return result, predictions


def layer_configs(layers):
    """Each layer's class and config from a model's JSON layers; not its build_config, which Keras drops for
    QDense on loading."""
    return [(layer["class_name"], layer["config"]) for layer in layers]


@pytest.fixture
def compiled_classifier(tmp_path, rng):
    """A trained functional TTLSTM classifier saved as ``.keras`` with its optimizer; (model, path, x)."""
    model = small_classifier(3)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(1e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x = rng.uniform(0, 1, (4, 3, 24)).astype(np.float32)
    model.fit(x, np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    path = tmp_path / "classifier.keras"
    model.save(path)
    return model, path, x


@pytest.mark.parametrize("how", ["plain", "models"])
def test_functional_keras_file_loads_the_same_model(how, compiled_classifier, tmp_path):
    """Plain ``load_model`` with ``custom_objects()`` and ``models.load_model`` rebuild the model, its
    predictions and a Keras 2.15 optimizer."""
    model, path, x = compiled_classifier
    result, predictions = load_in_subprocess(path, how, x, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert layer_configs(loaded["layers"]) == layer_configs(json.loads(model.to_json())["config"]["layers"])
    assert loaded["optimizer"] == "Adam" and loaded["keras_optimizer"]
    np.testing.assert_array_equal(predictions, model.predict(x, verbose=0))


def sequential_file(tmp_path, rng):
    """A Sequential TTLSTM model saved as ``.keras``; (model, path, x)."""
    model = tf.keras.Sequential([tf.keras.Input((3, 24)), small_classifier(3).get_layer("tt_lstm")])
    path = tmp_path / "sequential.keras"
    model.save(path)
    return model, path, rng.uniform(0, 1, (4, 3, 24)).astype(np.float32)


def test_models_load_model_loads_a_sequential_keras_file(tmp_path, rng):
    """``models.load_model`` also loads ``Sequential`` models, whose class ``custom_objects()`` cannot replace."""
    model, path, x = sequential_file(tmp_path, rng)
    result, predictions = load_in_subprocess(path, "models", x, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_array_equal(predictions, model.predict(x, verbose=0))


def test_plain_load_of_a_sequential_keras_file_fails_instead_of_hanging(tmp_path, rng):
    """Plain ``load_model`` rebuilds a ``Sequential`` file's model from tf_keras, which rejects our layers at once."""
    _, path, x = sequential_file(tmp_path, rng)
    result, _ = load_in_subprocess(path, "plain", x, tmp_path)
    assert result.returncode != 0
    assert "must be an instance of class Layer" in result.stderr
