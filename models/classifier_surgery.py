"""Surgery of a trained LSTM classifier: find its LSTM and head, put a compressed layer in the LSTM's place.

The classifiers ``models.admm`` and ``models.pruning`` compress are a chain: the input, one Keras
``LSTM`` or QKeras ``QLSTM`` (``lstm_layer``), then the head (``head_layers``: the layers after
it, e.g. a ``Dense`` giving logits). Both algorithms train a copy (``trainable_copy``) on the
LSTM's dense matrices (``dense_weights``), then ``replace_lstm`` builds the compressed classifier:
the family layer's ``from_dense`` of the final matrices, with the LSTM's activations
(``lstm_options``), and the head with its weights (``rebuild_classifier``).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np

# Keras warns when it serializes a tf_keras initializer (QKeras imports tf_keras, so a Keras layer's
# initializers are its objects); harmless here: copies get their weights set right after.
INITIALIZER_WARNING = r"The `keras.initializers.serialize\(\)` API should only be used"


@contextmanager
def copying_configs():
    """Without ``INITIALIZER_WARNING``: the copies made here never run their initializers."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=INITIALIZER_WARNING)
        yield


def lstm_layer(model):
    """The one Keras ``LSTM`` or QKeras ``QLSTM`` of ``model``; a ValueError naming the model's
    layers otherwise."""
    import tensorflow as tf
    from qkeras import QLSTM

    found = [layer for layer in model.layers if isinstance(layer, (tf.keras.layers.LSTM, QLSTM))]
    if len(found) != 1:
        layers = ", ".join(f"{layer.name} ({type(layer).__name__})" for layer in model.layers)
        raise ValueError(
            f"model '{model.name}' must have exactly one Keras LSTM or QKeras QLSTM layer, "
            f"it has {len(found)}; its layers: {layers}"
        )
    return found[0]


def head_layers(model, lstm) -> list:
    """The layers after ``lstm``, which must come right after the input (a chain)."""
    layers = list(model.layers)
    index = layers.index(lstm)
    if index != 1:
        raise ValueError(f"model '{model.name}': the LSTM must be the first layer after the input")
    return layers[index + 1 :]


def dense_weights(lstm) -> tuple:
    """``(kernel, recurrent_kernel, bias)`` of an LSTM layer as float64 (zero bias if it has none)."""
    weights = [np.asarray(w, np.float64) for w in lstm.get_weights()]
    if len(weights) == 2:
        weights.append(np.zeros(weights[1].shape[1]))
    return tuple(weights)


def lstm_options(lstm) -> dict:
    """``activation``, ``recurrent_activation`` (as names: QKeras stores its quantized ones as
    dicts) and ``return_sequences`` of an LSTM layer, for the layer that replaces it."""
    with copying_configs():
        config = lstm.get_config()
    options = {key: config[key] for key in ("activation", "recurrent_activation", "return_sequences")}
    for key in ("activation", "recurrent_activation"):
        if isinstance(options[key], dict):
            options[key] = options[key].get("class_name", options[key])
    return options


def trainable_copy(model) -> tuple:
    """``(copy, its LSTM)``: a copy of the classifier ``model`` with the same weights, to train
    without changing ``model``; a ValueError first for a model that is not input, LSTM, head."""
    import tensorflow as tf

    head_layers(model, lstm_layer(model))
    with copying_configs():
        copy = tf.keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy, lstm_layer(copy)


def replace_lstm(
    model, layer_class, structure: dict, weights=None, quantizers=None, head_quantizer=None, name="lstm"
) -> tuple:
    """``(classifier, relative error)``: ``model`` with its LSTM replaced by
    ``layer_class.from_dense`` of ``weights`` (``(kernel, recurrent_kernel, bias)``; default: the
    LSTM's own) with the keyword arguments ``structure`` (e.g. the block sizes), ``quantizers``
    (e.g. ``models.train.quantizer_kwargs()``) and the LSTM's ``lstm_options``, named ``name``;
    the head as ``rebuild_classifier`` makes it. The error is ``from_dense``'s."""
    lstm = lstm_layer(model)
    head_layers(model, lstm)
    kernel, recurrent_kernel, bias = dense_weights(lstm) if weights is None else weights
    layer, error = layer_class.from_dense(
        kernel, recurrent_kernel, bias, name=name, **structure, **lstm_options(lstm), **(quantizers or {})
    )
    return rebuild_classifier(model, lstm, layer, head_quantizer, name), error


def rebuild_classifier(model, lstm, layer, head_quantizer=None, name="lstm"):
    """``model`` with its recurrent layer ``lstm`` replaced by ``layer`` (built): the input as
    before, then ``layer``, then the layers after ``lstm`` with their weights, a ``Dense``
    becoming a ``QDense`` quantized by ``head_quantizer`` when one is given; named
    ``<name>_classifier``."""
    import tensorflow as tf
    from qkeras import QDense

    head = head_layers(model, lstm)
    with copying_configs():
        head_configs = [old.get_config() for old in head]
    inputs = tf.keras.Input(model.input_shape[1:], name=model.layers[0].name)
    outputs = layer(inputs)
    for old, config in zip(head, head_configs, strict=True):
        layer_class = type(old)
        if head_quantizer is not None and layer_class is tf.keras.layers.Dense:
            layer_class = QDense
            config.update(kernel_quantizer=head_quantizer, bias_quantizer=head_quantizer)
        new = layer_class.from_config(config)
        outputs = new(outputs)
        new.set_weights(old.get_weights())
    return tf.keras.Model(inputs, outputs, name=f"{name}_classifier")
