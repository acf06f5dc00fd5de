"""``python -m models.train``: train LSTM family video classifiers and a dense LSTM baseline.

Every model sees the same data and recipe (Adam, softmax cross-entropy, same epochs and batch),
so the comparison is the LSTM's maps alone. The family models (TT-LSTM by default, any
registered family with ``--models``) are quantization-aware from the start (every quantizer set,
``DEFAULT_QUANTIZERS``), so the saved model is what hardware runs.

Outputs (``--out``): ``<model>.h5`` per model (default ``tt_lstm.h5`` and ``dense_lstm.h5``), and
``train_report.json`` with held-out accuracy, parameter counts, each model file's SHA-256 and the
data set description (read by ``overlay build`` for a model file the report names, with that hash).

The recipe is shared by the other training command lines (``models.admm``, ``models.pruning``,
``overlay explore``): the task's and the recipe's options (``add_task_arguments``,
``add_recipe_arguments``), the data (``load_task_data``), ``fit``, and the fine-tune that ends a
compression (``FineTune``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from host.argument_types import integer_at_least, positive_float
from host.cli import run_command
from host.manifest import sha256_of

DEFAULT_QUANTIZERS = {
    "kernel_quantizer": (10, 1),
    "recurrent_quantizer": (10, 1),
    "bias_quantizer": (10, 2),
    "state_quantizer": (14, 3),
    "input_quantizer": (9, 1),
    "accumulator_quantizer": (14, 4),
    "activation_quantizer": (10, 0),
}
CLASSIFIER_QUANTIZER = (12, 3)


def quantizer_kwargs(spec=DEFAULT_QUANTIZERS) -> dict:
    from qkeras import quantized_bits

    return {name: quantized_bits(bits, integer, alpha=1) for name, (bits, integer) in spec.items()}


def classifier_head_quantizer():
    """The quantizer of a classifier's head (``CLASSIFIER_QUANTIZER``), kernel and bias."""
    from qkeras import quantized_bits

    return quantized_bits(*CLASSIFIER_QUANTIZER, alpha=1)


def build_tt_classifier(frames, n_features, classes, units=16, n_modes=4, rank=4, stateful=False):
    """Input (frames, n_features) -> TTLSTM(units) -> QDense(classes) logits."""
    return build_classifier("tt_lstm", frames, n_features, classes, units, n_modes, rank, stateful)


DENSE_BASELINE = "dense_lstm"


def model_names() -> list:
    """What ``--models`` takes: every registered family, and the float dense baseline."""
    from models.families import discover

    return [*discover(), DENSE_BASELINE]


def build_classifier(
    family, frames, n_features, classes, units=16, n_modes=4, rank=4, stateful=False, quantizers=DEFAULT_QUANTIZERS
):
    """Input (frames, n_features) -> a quantized LSTM family layer -> QDense(classes) logits.

    ``family``: a registered family name (``models.families``; quantization-aware, every
    quantizer set from ``quantizers``, ``{name: (bits, integer)}``) or ``dense_lstm`` (a float
    Keras LSTM baseline).
    """
    from models.families import get_family

    if family == DENSE_BASELINE:
        return build_dense_classifier(frames, n_features, classes, units)
    layer_class = get_family(family)
    quantized = quantizer_kwargs(quantizers)
    layer = layer_class.for_task(n_features, units, n_modes, rank, stateful=stateful, name=family, **quantized)
    return classifier_around(layer, frames, n_features, classes, stateful)


def classifier_around(layer, frames, n_features, classes, stateful=False):
    """Input (frames, n_features) -> ``layer`` (an LSTM family layer, unbuilt) -> QDense(classes)
    logits, the head quantized by ``CLASSIFIER_QUANTIZER``; the model is named after the layer."""
    import tensorflow as tf
    from qkeras import QDense

    head_q = classifier_head_quantizer()
    head = QDense(classes, kernel_quantizer=head_q, bias_quantizer=head_q, name="classifier")
    inputs = tf.keras.Input((frames, n_features), batch_size=1 if stateful else None, name="frames")
    return tf.keras.Model(inputs, head(layer(inputs)), name=f"{layer.name}_classifier")


def build_dense_classifier(frames, n_features, classes, units=16):
    import tensorflow as tf

    inputs = tf.keras.Input((frames, n_features), name="frames")
    hidden = tf.keras.layers.LSTM(units, name="dense_lstm")(inputs)
    outputs = tf.keras.layers.Dense(classes, name="classifier")(hidden)
    return tf.keras.Model(inputs, outputs, name="dense_lstm_classifier")


def streaming_copy(model):
    """The same layer chain, stateful with one frame per call (batch 1): for frame-by-frame hardware.

    Weights are shared values (copied); every recurrent layer becomes ``stateful=True``. The layers
    are rebuilt from their configs with Keras' own initializers (``keras_names_from_tf_keras_api``),
    as a loaded model has them: serializing the copy (hls4ml does) then raises no Keras warning.
    """
    import tensorflow as tf

    from models.saving import keras_names_from_tf_keras_api

    n_features = model.input_shape[-1]
    inputs = tf.keras.Input((1, n_features), batch_size=1, name=model.layers[0].name)
    outputs = inputs
    for layer in model.layers[1:]:
        config = layer.get_config()
        if "stateful" in config:
            config["stateful"] = True
        with keras_names_from_tf_keras_api():
            rebuilt = type(layer).from_config(config)
        outputs = rebuilt(outputs)
    copy = tf.keras.Model(inputs, outputs, name=f"{model.name}_stream")
    copy.set_weights(model.get_weights())
    return copy


class ProgressBar:
    """A tqdm bar over epochs as a Keras callback (loss and accuracy in the postfix)."""

    def __new__(cls, epochs, description):
        import tensorflow as tf
        from tqdm import tqdm

        class _Callback(tf.keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.bar = tqdm(
                    total=epochs, desc=description, unit="epoch", file=sys.stdout, mininterval=2.0, ascii=True
                )

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()})
                self.bar.update(1)

            def on_train_end(self, logs=None):
                self.bar.close()

        return _Callback()


HELD_OUT = 0.25  # the share of the clips held out for the accuracy


def split_by_class(y: np.ndarray, order: np.ndarray, class_names: list, warn=print) -> tuple:
    """``(train, test)`` indices of the seeded permutation ``order``, stratified: ``HELD_OUT`` of
    each class's clips (at least one, never all) held out, so every class with two clips or more
    is in both; a class of one clip is trained on only, said by ``warn``."""
    train, test = [], []
    for label, name in enumerate(class_names):
        members = order[y[order] == label]
        held = min(max(round(HELD_OUT * len(members)), 1), len(members) - 1)
        if len(members) == 1:
            warn(f"class '{name}' has 1 clip: it is trained on, not held out (its accuracy is not measured)")
        train.append(members[held:])
        test.append(members[:held])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_data(data: str, clips: int, seed: int, frames: int, height: int, width: int, channels: int, warn=None):
    """(x_train, y_train, x_test, y_test, description): synthetic by default, else a folder.

    A folder is split by class (``split_by_class``); the synthetic clips, balanced by construction,
    by a seeded permutation (as every recorded result was). ``warn`` (default: printed as
    ``[train] warning: ...``) is told of a class with one clip and of a class no clip trains."""
    from models import datasets

    warn = warn or (lambda line: print(f"[train] warning: {line}"))

    if data == "synthetic":
        config = datasets.SyntheticVideoConfig(height=height, width=width, channels=channels, frames=frames, seed=seed)
        x, y = datasets.synthetic_video(clips, config)
        description = {"kind": "synthetic", **asdict(config), "class_names": datasets.class_names(config)}
    else:
        x, y, names = datasets.load_video_folder(data, height=height, width=width, channels=channels, frames=frames)
        description = {"kind": "folder", "root": str(data), "height": height, "width": width, "channels": channels}
        description.update(frames=frames, class_names=list(names))
    order = np.random.default_rng(seed).permutation(len(x))
    if data == "synthetic":
        split = int((1 - HELD_OUT) * len(x))
        train, test = order[:split], order[split:]
    else:
        train, test = split_by_class(y, order, description["class_names"], warn)
    untrained = [name for label, name in enumerate(description["class_names"]) if label not in y[train]]
    if untrained:
        warn(f"no training clip of class(es) {', '.join(untrained)}: the model cannot learn them (more --clips)")
    if len(test) == 0:
        raise ValueError(f"no clip is left to hold out of {len(x)}: the accuracy cannot be measured")
    return x[train], y[train], x[test], y[test], description


def compile_classifier(model, learning_rate) -> None:
    """Compile ``model`` with the recipe of every training here: Adam at ``learning_rate``,
    softmax cross-entropy of the logits, accuracy as the metric."""
    import tensorflow as tf

    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def fit(model, x, y, x_test, y_test, epochs, batch_size, learning_rate, description):
    compile_classifier(model, learning_rate)
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[ProgressBar(epochs, description)])
    return float(model.evaluate(x_test, y_test, verbose=0)[1])


def held_out_accuracy(model, x, y, batch_size=256) -> float:
    """The fraction of clips whose largest output is the label (no compile, no traced function)."""
    outputs = [np.asarray(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return float(np.mean(np.argmax(np.concatenate(outputs), axis=-1) == np.asarray(y)))


@dataclass(frozen=True)
class FineTune:
    """The fine-tune that ends a compression (``models.admm.compress``, ``models.pruning.compress``):
    the compressed classifier is built with ``quantizers`` (keyword arguments of its new layer, e.g.
    ``quantizer_kwargs()``; none: float) and ``head_quantizer`` (a ``Dense`` of the head becomes a
    ``QDense`` quantized by it; none: the head as it was), so the fine-tune is quantization-aware,
    and trained ``epochs`` epochs (0: none) with ``fit``."""

    epochs: int = 5
    quantizers: dict | None = None
    head_quantizer: object = None

    def __post_init__(self):
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, np.integer)) or self.epochs < 0:
            raise ValueError(f"'epochs' must be an integer >= 0, got {self.epochs!r}")

    @classmethod
    def quantized(cls, epochs: int) -> FineTune:
        """``epochs`` epochs of a classifier with this module's quantizers (``DEFAULT_QUANTIZERS``,
        the head's ``CLASSIFIER_QUANTIZER``): what the command lines deploy."""
        return cls(epochs, quantizer_kwargs(), classifier_head_quantizer())

    @property
    def quantization(self) -> dict:
        """``quantizers`` and ``head_quantizer``: keyword arguments of the conversion that builds
        the compressed classifier (``models.classifier_surgery.replace_lstm``)."""
        return {"quantizers": self.quantizers, "head_quantizer": self.head_quantizer}

    def run(self, model, data, config, label: str, error: type) -> float:
        """Train ``model`` on ``data`` (``(x, y, x_test, y_test)``) with ``config``'s ``batch_size``
        and ``learning_rate`` and return its held-out accuracy; ``error`` (the compression's
        divergence error) when a weight is not finite after."""
        x, y, x_test, y_test = data
        if self.epochs:
            fit(model, x, y, x_test, y_test, self.epochs, config.batch_size, config.learning_rate, f"{label} fine-tune")
        if not all(np.all(np.isfinite(w)) for w in model.get_weights()):
            raise error(f"the fine-tune after {label} diverged: non-finite weights after {self.epochs} epochs")
        return held_out_accuracy(model, x_test, y_test)


class DataError(ValueError):
    """The ``--data`` folder could not be read."""


def load_task_data(args) -> tuple:
    """The seeded data of a training command line's ``args`` (``--data``, ``--seed`` and
    ``add_task_arguments``): ``(x, y, x_test, y_test, description)``; a ``DataError`` names ``--data``."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(args.seed)
    try:
        return load_data(args.data, args.clips, args.seed, args.frames, args.height, args.width, args.channels)
    except (OSError, ValueError) as err:
        raise DataError(f"--data {args.data}: {err}") from None


def train(args) -> dict:
    """Train every model of ``args.models`` on the data of ``args``; write them and the report."""
    x, y, x_test, y_test, description = load_task_data(args)
    classes = len(description["class_names"])
    n_features = x.shape[-1]
    print(
        f"[train] data: {description['kind']}, {len(x)} train / {len(x_test)} held-out clips, "
        f"{x.shape[1]} frames x {n_features} features, {classes} classes"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"dataset": description, "models": {}}
    for name in args.models:
        model = build_classifier(name, x.shape[1], n_features, classes, args.units, args.modes, args.rank)
        accuracy = fit(model, x, y, x_test, y_test, args.epochs, args.batch_size, args.learning_rate, name)
        path = out / f"{name}.h5"
        model.save(path)
        report["models"][name] = {
            "path": str(path),
            "sha256": sha256_of(path),  # overlay build takes the data set description only for this file
            "held_out_accuracy": accuracy,
            "params": model.count_params(),
        }
        print(f"[train] {name}: held-out accuracy {accuracy:.3f}, {model.count_params():,} parameters -> {path}")
    (out / "train_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"[train] report -> {out / 'train_report.json'}")
    return report


def data_source(text: str) -> str:
    """An argparse type: 'synthetic', or a folder holding at least two class folders."""
    if text == "synthetic":
        return text
    root = Path(text)
    if not text or not root.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'synthetic' nor an existing folder")
    classes = [path for path in root.iterdir() if path.is_dir()]
    if len(classes) < 2:
        raise argparse.ArgumentTypeError(
            f"folder {root} has {len(classes)} class folder(s), a classifier needs at least 2 (root/<class>/<clip>)"
        )
    return text


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """The task's options (data, clips, frame size, units), shared by every training command line."""
    parser.add_argument(
        "--data", type=data_source, default="synthetic", help="'synthetic' or a folder root/<class>/<clip>.avi|mp4"
    )
    parser.add_argument("--clips", type=integer_at_least(2), default=2400, help="synthetic clips (train + held-out)")
    parser.add_argument("--frames", type=integer_at_least(2), default=8, help="frames per clip")
    parser.add_argument("--height", type=integer_at_least(4), default=16, help="frame height in pixels")
    parser.add_argument("--width", type=integer_at_least(4), default=16, help="frame width in pixels")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3), help="1 (grey) or 3 (RGB)")
    parser.add_argument("--units", type=integer_at_least(1), default=16, help="LSTM hidden units")


def add_recipe_arguments(
    parser: argparse.ArgumentParser, epochs: int, epochs_help: str, batch_size=32, learning_rate=5e-3
) -> None:
    """The training recipe's options (``--epochs``, ``--batch-size``, ``--learning-rate``,
    ``--seed``), shared by every training command line."""
    parser.add_argument("--epochs", type=integer_at_least(1), default=epochs, help=epochs_help)
    parser.add_argument("--batch-size", type=integer_at_least(1), default=batch_size, help="clips per training step")
    parser.add_argument("--learning-rate", type=positive_float, default=learning_rate, help="Adam's learning rate")
    parser.add_argument(
        "--seed", type=integer_at_least(0), default=0, help="seed of the data, split and initial weights"
    )


def check_out(parser: argparse.ArgumentParser, args) -> None:
    """``parser.error`` when ``--out`` names a file: the command writes a folder there."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"argument --out: {out} is a file, not a folder")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m models.train`` (every option with its help and default)."""
    parser = argparse.ArgumentParser(
        prog="python -m models.train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", default="build/models", help="folder for the models (.h5) and train_report.json")
    parser.add_argument(
        "--models", nargs="+", default=["tt_lstm", DENSE_BASELINE], choices=model_names(), help="models to train"
    )
    add_task_arguments(parser)
    parser.add_argument(
        "--modes",
        type=integer_at_least(1),
        default=4,
        help="modes per dimension of the decomposed map (TT cores, HT leaves)",
    )
    parser.add_argument("--rank", type=integer_at_least(1), default=4, help="every inner rank of the decomposition")
    add_recipe_arguments(parser, 30, "training epochs")
    return parser


def check_args(parser: argparse.ArgumentParser, args) -> None:
    """What the types cannot check alone, before any data is read: ``parser.error`` names an
    ``--out`` that is a file, synthetic ``--clips`` too few for a training and a held-out clip
    of every class, or ``--units`` / ``--modes`` / ``--rank`` a model cannot take (each model is
    built once for the data's shapes). A model listed twice in ``--models`` is trained once (said)."""
    from models import datasets

    check_out(parser, args)
    n_features = args.height * args.width * args.channels
    if args.data == "synthetic":
        classes = datasets.SyntheticVideoConfig().classes
        if args.clips < 2 * classes:
            parser.error(
                f"argument --clips: --clips {args.clips} is too few for the {classes} classes of the synthetic "
                f"task: give at least {2 * classes} (a training and a held-out clip of each)"
            )
    else:
        classes = sum(path.is_dir() for path in Path(args.data).iterdir())
    for name in dict.fromkeys(name for name in args.models if args.models.count(name) > 1):
        print(f"[train] note: --models lists {name} {args.models.count(name)} times: it is trained once")
    args.models = list(dict.fromkeys(args.models))
    for name in args.models:
        try:
            build_classifier(name, args.frames, n_features, classes, args.units, args.modes, args.rank)
        except ValueError as err:
            parser.error(
                f"--models {name} cannot take --units {args.units} --modes {args.modes} --rank {args.rank}: {err}"
            )


def parse_args(argv=None):
    """The arguments of ``argv``; a bad one exits (code 2) with one message before any work."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    return args


def main(argv=None) -> int:
    from models.quiet import quiet_imports

    quiet_imports()
    args = parse_args(argv)
    try:
        train(args)
    except DataError as err:
        print(f"[train] error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    run_command(main, "train")
