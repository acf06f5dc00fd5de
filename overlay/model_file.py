"""The Keras model file ``overlay build`` and ``overlay estimate`` start from."""

from __future__ import annotations


def load_keras_model(path):
    """Load a model saved by ``models.train``; refuse a file without one of our LSTM layers."""
    from hls_project.convert import family_layers
    from hls_project.families import FAMILY_LAYERS
    from models.saving import load_model

    try:
        model = load_model(path, compile=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load model {path}: {err}") from None
    if not family_layers(model):
        families = " / ".join(sorted(FAMILY_LAYERS))
        raise ValueError(f"model {path} has no {families} layer: nothing for this flow to accelerate")
    return model
