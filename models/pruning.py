"""``python -m models.pruning``: gradual row-balanced, dual-ratio magnitude pruning of a dense LSTM (BRDS).

BRDS (arXiv 2101.02667) prunes the two weight matrices of an LSTM with their own ratios (they are
not equally sensitive) and keeps the same number of non-zeros in every output row, so that the
processing elements of the accelerator finish their rows together (``models.row_balanced``).
This module takes a trained classifier (one Keras ``LSTM`` or QKeras ``QLSTM`` right after the
input, then a head) and:

1. **prunes gradually** (``prune``): a copy is trained with Adam while the sparsity of the kernel
   ``W_x`` ``(n_in, 4H)`` and of the recurrent kernel ``W_h`` ``(H, 4H)`` ramps to its own target.
   The ramp is a ``tensorflow_model_optimization`` pruning schedule per matrix
   (``PolynomialDecay`` from 0, or ``ConstantSparsity``: one shot), called with the training step
   (batch count) as tfmot's own wrapper does: every ``epochs_per_step`` epochs (``frequency``)
   for ``steps`` steps, then ``hold_epochs`` more epochs at the targets. When the schedule says
   so, the mask of each matrix becomes, per output row (a column of the Keras matrix), its
   ``nnz`` largest magnitudes (``rb_prune``; ``nnz = n_in - floor(sparsity * n_in)``, the same in
   every row, ``RBShape``); after every batch the masks are multiplied into the weights, so a pruned
   weight stays zero. tfmot's ``prune_low_magnitude`` wrapper cannot keep rows balanced (its
   masks are per tensor or per block), so the masks are this module's callback;
2. **converts** (``to_row_balanced``): ``RowBalancedSparseLSTM.from_dense`` of the pruned
   matrices (with the quantizers given, ``models.train.quantizer_kwargs()`` in the CLI) and the
   head with the same weights (``models.classifier_surgery.replace_lstm``), then an ordinary fine-tune:
   the structure is in the layer, so training keeps it. ``compress`` does 1 and 2.

**Sensitivity sweep** (``sensitivity``): each matrix pruned alone (the other dense) to every ratio
of a grid, with a short prune-and-fine-tune each, and held-out accuracy measured. A pair
``(input ratio, recurrent ratio)`` is estimated to lose the sum of the two single losses
(a gain counts as no loss); the sweep picks, among the pairs whose estimated loss is within
``tolerance`` of the dense model, the one with the least memory (``rbs_lstm_cost(...).memory_bits``
at the quantizers' widths: values and indices of both matrices, the bias); ties go to the smaller
loss (``choose_pair``). Ratio 0 is in every grid (no loss), so a choice always exists.

The CLI trains the dense baseline (``models.train``'s recipe), optionally sweeps (``--sweep``),
prunes, converts and fine-tunes (quantization-aware), and writes ``dense_lstm.h5``,
``rbs_lstm.h5`` and ``train_report.json`` (as ``models.train`` writes it, plus ``pruning``:
settings, schedule, history, sweep) only once everything succeeded. What it shares with
``models.admm``'s is ``models.compression_cli``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from host.cli import run_command
from models.classifier_surgery import dense_weights, lstm_layer, replace_lstm, trainable_copy
from models.compression_cli import CompressionCommand
from models.row_balanced import RBShape, check_sparsity, rb_prune
from models.train import held_out_accuracy

SCHEDULES = ("polynomial", "constant")
DEFAULT_RATIOS = (0.5, 0.75, 0.9, 0.95)


class PruningError(RuntimeError):
    """Pruning (or the fine-tune after it) diverged: the message names the step and the value."""


@dataclass(frozen=True)
class PruningConfig:
    """The pruning schedule (see the module docstring).

    steps: mask updates after the first one (at training step 0: sparsity 0 for ``polynomial``,
        the targets for ``constant``); the last one reaches the targets.
    epochs_per_step: epochs of fine-tuning between two mask updates (the schedule's ``frequency``).
    hold_epochs: epochs after the last mask update (at least 1: the last update happens at its
        start), at the targets.
    schedule: ``polynomial`` (tfmot ``PolynomialDecay`` from 0 with exponent ``power``) or
        ``constant`` (tfmot ``ConstantSparsity``: the targets from the first step).
    learning_rate, batch_size: Adam's, as in ``models.train``.
    """

    steps: int = 4
    epochs_per_step: int = 1
    hold_epochs: int = 2
    schedule: str = "polynomial"
    power: float = 3.0
    learning_rate: float = 5e-3
    batch_size: int = 32

    def __post_init__(self):
        for name, minimum in (("steps", 1), ("epochs_per_step", 1), ("hold_epochs", 1), ("batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"'{name}' must be an integer >= {minimum}, got {value!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"'schedule' must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        for name in ("power", "learning_rate"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"'{name}' must be a finite number > 0, got {value!r}")

    @property
    def epochs(self) -> int:
        """Epochs of ``prune``: ``steps * epochs_per_step + hold_epochs``."""
        return self.steps * self.epochs_per_step + self.hold_epochs


@dataclass
class PruningRun:
    """What ``prune`` returns: the pruned float model, its masked matrices, masks and history."""

    model: object  # the pruned copy of the dense classifier
    kernel: np.ndarray  # masked W_x, (n_in, 4H)
    recurrent_kernel: np.ndarray  # masked W_h, (H, 4H)
    bias: np.ndarray  # (4H,)
    masks: tuple  # (kernel mask, recurrent mask), 1.0 where kept
    history: list = field(default_factory=list)  # one dict per mask update


@dataclass
class PruningResult:
    """What ``compress`` returns."""

    model: object  # the fine-tuned RowBalancedSparseLSTM classifier
    held_out_accuracy: float
    pruned_accuracy: float  # the float pruned model before conversion
    conversion_error: float  # relative error of from_dense on the pruned matrices (0 when masks match)
    run: PruningRun


def shapes_for(lstm, input_sparsity, recurrent_sparsity) -> tuple:
    """``(kernel RBShape, recurrent RBShape)`` of an LSTM layer at the two ratios."""
    kernel, recurrent, _ = dense_weights(lstm)
    return (
        RBShape.create(*kernel.shape, input_sparsity, "input_sparsity"),
        RBShape.create(*recurrent.shape, recurrent_sparsity, "recurrent_sparsity"),
    )


def row_balanced_mask(matrix, sparsity, parameter="input_sparsity") -> np.ndarray:
    """The ``(n_in, n_out)`` 0/1 mask keeping each output row's ``nnz`` largest ``|w|`` (``rb_prune``)."""
    matrix = np.asarray(matrix, np.float64)
    shape = RBShape.create(*matrix.shape, sparsity, parameter)
    _, indices, _ = rb_prune(matrix, shape)
    mask = np.zeros((shape.n_out, shape.n_in))  # (n_out, n_in): one row per output
    np.put_along_axis(mask, indices, 1.0, axis=1)
    return mask.T


def schedule(target, config: PruningConfig, steps_per_epoch: int):
    """The tfmot pruning schedule of one matrix: called with the training step (batches so far),
    it returns ``(prune now?, sparsity)``: at training steps ``0, f, 2f, ..., steps * f`` with
    ``f = epochs_per_step * steps_per_epoch``, the target from ``steps * f`` on."""
    from tensorflow_model_optimization.sparsity import keras as sparsity_api

    target = check_sparsity(target, "sparsity")
    frequency = config.epochs_per_step * steps_per_epoch
    end = config.steps * frequency
    if config.schedule == "constant":
        return sparsity_api.ConstantSparsity(target, begin_step=0, end_step=end, frequency=frequency)
    return sparsity_api.PolynomialDecay(
        0.0, target, begin_step=0, end_step=end, power=config.power, frequency=frequency
    )


def schedule_table(schedule_, n_steps: int, target: float) -> tuple:
    """``(prune now? (n_steps,) bool, ratio (n_steps,) float)`` of ``schedule_`` at training steps
    ``0 .. n_steps - 1``, in one call (tfmot's schedules are element-wise in the step). A ratio
    (float32 in tfmot) within 1e-6 of ``target`` is ``target``, so the last mask has exactly the
    target's ``nnz``."""
    import tensorflow as tf

    should, value = schedule_(tf.range(n_steps, dtype=tf.int64))
    should = np.broadcast_to(np.asarray(should, bool), (n_steps,))
    value = np.clip(np.broadcast_to(np.asarray(value, np.float64), (n_steps,)), 0.0, target)
    return should, np.where(np.abs(value - target) < 1e-6, target, value)


def _pruning_callback(variables, targets, schedules, n_steps, history: list, validation, config: PruningConfig):
    """The Keras callback that updates the row-balanced masks on schedule (``n_steps`` training
    steps) and applies them."""
    import tensorflow as tf

    names = ("input", "recurrent")

    class RowBalancedPruning(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step = 0
            self.tables = [schedule_table(s, n_steps, target) for s, target in zip(schedules, targets, strict=True)]
            self.epoch = 0
            self.error = None
            self.masks = [np.ones(v.shape) for v in variables]
            self.mask_tensors = [tf.ones_like(v) for v in variables]

        def apply_masks(self):
            for v, mask in zip(variables, self.mask_tensors, strict=True):
                v.assign(v * mask)

        def on_train_batch_begin(self, batch, logs=None):
            entry = {}
            for k, (v, (should, ratios)) in enumerate(zip(variables, self.tables, strict=True)):
                if self.step >= n_steps or not should[self.step]:
                    continue
                ratio = float(ratios[self.step])
                self.masks[k] = row_balanced_mask(v.numpy(), ratio, f"{names[k]}_sparsity")
                self.mask_tensors[k] = tf.constant(self.masks[k], dtype=v.dtype)
                entry[f"{names[k]}_sparsity"] = ratio
                entry[f"{names[k]}_nnz"] = int(self.masks[k].sum(axis=0)[0])  # every output row alike
            if entry:
                self.apply_masks()
                history.append({"step": len(history), "training_step": self.step, "epoch": self.epoch, **entry})

        def on_train_batch_end(self, batch, logs=None):
            self.apply_masks()
            self.step += 1
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss) and self.error is None:
                self.error = PruningError(
                    f"pruning diverged at step {len(history) - 1} (epoch {self.epoch + 1}, batch {batch}): loss {loss}"
                )
                self.model.stop_training = True

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            # the fine-tune after a mask update (or the hold) ends: the held-out accuracy at its sparsity
            if validation is not None and history and (epoch + 1) % config.epochs_per_step == 0:
                history[-1]["held_out_accuracy"] = held_out_accuracy(self.model, *validation)

    return RowBalancedPruning()


def prune(
    model,
    x,
    y,
    input_sparsity,
    recurrent_sparsity=None,
    config: PruningConfig | None = None,
    validation=None,
    label="prune",
    callbacks=(),
) -> PruningRun:
    """Gradual row-balanced magnitude pruning of a trained classifier's LSTM (see the module docstring).

    ``model`` is not changed: a copy is pruned. ``recurrent_sparsity`` defaults to
    ``input_sparsity``. ``validation``: ``(x, y)`` held out, for the history's accuracy after each
    step. ``callbacks``: more Keras callbacks, called after the masks are applied. Raises
    ``PruningError`` for a non-finite loss and ValueError for ratios outside [0, 1).
    """
    from models.train import ProgressBar, compile_classifier

    config = config or PruningConfig()
    input_sparsity = check_sparsity(input_sparsity, "input_sparsity")
    recurrent_sparsity = input_sparsity if recurrent_sparsity is None else recurrent_sparsity
    recurrent_sparsity = check_sparsity(recurrent_sparsity, "recurrent_sparsity")
    copy, lstm = trainable_copy(model)
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    targets = (input_sparsity, recurrent_sparsity)
    schedules = [schedule(target, config, steps_per_epoch) for target in targets]
    history: list = []
    variables = (lstm.cell.kernel, lstm.cell.recurrent_kernel)
    pruning = _pruning_callback(
        variables, targets, schedules, config.epochs * steps_per_epoch, history, validation, config
    )
    compile_classifier(copy, config.learning_rate)
    description = f"{label} {input_sparsity:g}/{recurrent_sparsity:g}"
    copy.fit(
        x,
        y,
        epochs=config.epochs,
        batch_size=config.batch_size,
        verbose=0,
        callbacks=[pruning, *callbacks, ProgressBar(config.epochs, description)],
    )
    if pruning.error is not None:
        raise pruning.error
    kernel, recurrent_kernel, bias = dense_weights(lstm)
    bad = [
        name for name, w in (("kernel", kernel), ("recurrent kernel", recurrent_kernel)) if not np.all(np.isfinite(w))
    ]
    if bad:
        raise PruningError(f"pruning diverged: non-finite weights in the {' and '.join(bad)}")
    return PruningRun(copy, kernel, recurrent_kernel, bias, tuple(pruning.masks), history)


def to_row_balanced(
    model, input_sparsity, recurrent_sparsity=None, weights=None, quantizers=None, head_quantizer=None, name="rbs_lstm"
) -> tuple:
    """``(RowBalancedSparseLSTM classifier, relative error)`` from a (pruned) dense classifier.

    The LSTM becomes ``RowBalancedSparseLSTM.from_dense`` of ``weights`` (``(kernel,
    recurrent_kernel, bias)``; default: the model's own) at the two ratios, with ``quantizers``
    (keyword arguments of the layer, e.g. ``models.train.quantizer_kwargs()``); the layers after
    it keep their weights, a ``Dense`` becoming a ``QDense`` quantized by ``head_quantizer`` when
    one is given. The error is 0 when the matrices already have the ratios' row-balanced pattern.
    """
    from models.rbs_lstm import RowBalancedSparseLSTM

    structure = {"input_sparsity": input_sparsity, "recurrent_sparsity": recurrent_sparsity}
    return replace_lstm(model, RowBalancedSparseLSTM, structure, weights, quantizers, head_quantizer, name)


def compress(
    model, x, y, x_test, y_test, input_sparsity, recurrent_sparsity=None, config=None, finetune=None, label="prune"
) -> PruningResult:
    """Gradual pruning (``config``: a ``PruningConfig``), conversion to ``RowBalancedSparseLSTM``
    and fine-tune (``finetune``: a ``models.train.FineTune``, default 5 float epochs) of a trained
    classifier. Raises ``PruningError`` when pruning or the fine-tune diverges."""
    from models.train import FineTune

    config = config or PruningConfig()
    finetune = finetune or FineTune()
    recurrent_sparsity = input_sparsity if recurrent_sparsity is None else recurrent_sparsity
    run = prune(model, x, y, input_sparsity, recurrent_sparsity, config, (x_test, y_test), label)
    pruned_accuracy = held_out_accuracy(run.model, x_test, y_test)
    masked = (run.kernel, run.recurrent_kernel, run.bias)
    rbs_model, error = to_row_balanced(run.model, input_sparsity, recurrent_sparsity, masked, **finetune.quantization)
    accuracy = finetune.run(rbs_model, (x, y, x_test, y_test), config, label, PruningError)
    return PruningResult(rbs_model, accuracy, pruned_accuracy, error, run)


# -- sensitivity sweep --------------------------------------------------------------------------


def memory_bits(n_in, units, input_sparsity, recurrent_sparsity, quantizers=None) -> int:
    """Bits of a ``RowBalancedSparseLSTM`` layer (``rbs_lstm_cost(...).memory_bits``) at the
    widths of ``quantizers`` (default ``models.train``'s)."""
    from models.rbs_lstm import rbs_lstm_cost
    from models.train import quantizer_kwargs

    quantizers = quantizers or quantizer_kwargs()
    bits = [int(quantizers[f"{name}_quantizer"].bits) for name in ("kernel", "recurrent", "bias")]
    return int(rbs_lstm_cost(n_in, units, input_sparsity, recurrent_sparsity).memory_bits(*bits))


def choose_pair(table, tolerance) -> dict:
    """The row of ``table`` (dicts with ``memory_bits`` and ``estimated_loss``) with the least
    memory among those whose estimated loss is at most ``tolerance``; ties: the smaller loss,
    then the table's order. A ValueError when no row is within tolerance."""
    within = [row for row in table if row["estimated_loss"] <= tolerance + 1e-12]
    if not within:
        raise ValueError(f"no pair loses at most {tolerance:g} accuracy")
    return min(within, key=lambda row: (row["memory_bits"], row["estimated_loss"]))


@dataclass
class Sensitivity:
    """What ``sensitivity`` returns."""

    dense_accuracy: float
    input_accuracy: dict  # input ratio -> held-out accuracy with W_x alone pruned
    recurrent_accuracy: dict  # recurrent ratio -> held-out accuracy with W_h alone pruned
    table: list  # one row per (input, recurrent) pair: the candidates of the choice
    tolerance: float
    choice: dict  # the chosen row of ``table``

    def as_json(self) -> dict:
        return {
            "dense_accuracy": self.dense_accuracy,
            "input_accuracy": {str(k): v for k, v in self.input_accuracy.items()},
            "recurrent_accuracy": {str(k): v for k, v in self.recurrent_accuracy.items()},
            "tolerance": self.tolerance,
            "choice": self.choice,
            "table": self.table,
        }


def pair_table(dense_accuracy, input_accuracy: dict, recurrent_accuracy: dict, memory) -> list:
    """Every pair of the two grids with its memory (``memory(input, recurrent)``) and estimated
    loss: the sum of the single-matrix losses against ``dense_accuracy``, each at least 0."""
    rows = []
    for r_x, acc_x in input_accuracy.items():
        for r_h, acc_h in recurrent_accuracy.items():
            loss = max(0.0, dense_accuracy - acc_x) + max(0.0, dense_accuracy - acc_h)
            rows.append(
                dict(
                    input_sparsity=r_x,
                    recurrent_sparsity=r_h,
                    memory_bits=int(memory(r_x, r_h)),
                    input_accuracy=acc_x,
                    recurrent_accuracy=acc_h,
                    estimated_loss=loss,
                )
            )
    return rows


def print_table(result: Sensitivity, tag="[prune]") -> None:
    """The sweep's candidates, least memory first, the chosen one marked."""
    print(
        f"{tag} sensitivity: dense accuracy {result.dense_accuracy:.3f}, tolerance {result.tolerance:g}; "
        "estimated loss = input loss + recurrent loss (each pruned alone)"
    )
    header = ["input", "recurrent", "memory (bits)", "acc W_x only", "acc W_h only", "est. loss", ""]
    rows = [
        [
            f"{r['input_sparsity']:g}",
            f"{r['recurrent_sparsity']:g}",
            f"{r['memory_bits']:,}",
            f"{r['input_accuracy']:.3f}",
            f"{r['recurrent_accuracy']:.3f}",
            f"{r['estimated_loss']:.3f}",
            "<- chosen" if r is result.choice else ("" if r["estimated_loss"] <= result.tolerance + 1e-12 else "over"),
        ]
        for r in sorted(result.table, key=lambda r: r["memory_bits"])
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        print("  " + "  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)))


def sensitivity(
    model,
    x,
    y,
    x_test,
    y_test,
    ratios=DEFAULT_RATIOS,
    recurrent_ratios=None,
    tolerance=0.02,
    config: PruningConfig | None = None,
    quantizers=None,
    label="sweep",
    verbose=True,
) -> Sensitivity:
    """Prune ``W_x`` alone to each of ``ratios`` and ``W_h`` alone to each of ``recurrent_ratios``
    (default ``ratios``), each a short ``prune`` (``config``; default one shot, ``constant``, 1
    epoch and 1 held), measure the held-out accuracy (float, before conversion), and choose the pair as the
    module docstring says. Prints the table (``verbose``) and returns it with the choice."""
    from models.train import quantizer_kwargs

    config = config or PruningConfig(steps=1, epochs_per_step=1, hold_epochs=1, schedule="constant")
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and 0 <= tolerance <= 1):
        raise ValueError(f"'tolerance' must be an accuracy difference in [0, 1], got {tolerance!r}")
    ratios = [check_sparsity(r, "ratios") for r in ratios]
    recurrent_ratios = (
        ratios if recurrent_ratios is None else [check_sparsity(r, "recurrent_ratios") for r in recurrent_ratios]
    )
    lstm = lstm_layer(model)
    kernel, recurrent_kernel, _ = dense_weights(lstm)
    n_in, units = kernel.shape[0], recurrent_kernel.shape[0]
    quantizers = quantizers or quantizer_kwargs()
    dense_accuracy = held_out_accuracy(model, x_test, y_test)
    accuracy = {"input": {0.0: dense_accuracy}, "recurrent": {0.0: dense_accuracy}}
    for which, grid in (("input", ratios), ("recurrent", recurrent_ratios)):
        for ratio in sorted(set(grid) - {0.0}):
            pair = (ratio, 0.0) if which == "input" else (0.0, ratio)
            run = prune(model, x, y, *pair, config, label=f"{label} {which}")
            accuracy[which][ratio] = held_out_accuracy(run.model, x_test, y_test)
    table = pair_table(
        dense_accuracy,
        accuracy["input"],
        accuracy["recurrent"],
        lambda r_x, r_h: memory_bits(n_in, units, r_x, r_h, quantizers),
    )
    result = Sensitivity(
        dense_accuracy, accuracy["input"], accuracy["recurrent"], table, float(tolerance), choose_pair(table, tolerance)
    )
    if verbose:
        print_table(result)
    return result


# -- command line -------------------------------------------------------------------------------


COMMAND = CompressionCommand("models.pruning", "prune", "rbs_lstm", PruningConfig, PruningError)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m models.pruning``: ``COMMAND``'s options, then pruning's."""
    from host.argument_types import accuracy_difference, integer_at_least, sparsity_ratio

    parser = COMMAND.base_parser(__doc__, finetune_epochs=5, finetune_minimum=0)
    parser.add_argument("--input-sparsity", type=sparsity_ratio, help="target ratio of W_x, in [0, 1)")
    parser.add_argument("--recurrent-sparsity", type=sparsity_ratio, help="of W_h (default: --input-sparsity)")
    parser.add_argument("--sweep", action="store_true", help="choose both ratios by the sensitivity sweep")
    parser.add_argument(
        "--tolerance", type=accuracy_difference, default=0.02, help="--sweep: largest estimated accuracy loss"
    )
    parser.add_argument(
        "--ratios", type=sparsity_ratio, nargs="+", default=list(DEFAULT_RATIOS), help="--sweep: the grid of ratios"
    )
    parser.add_argument(
        "--sweep-epochs", type=integer_at_least(2), default=2, help="--sweep: epochs per ratio and matrix"
    )
    option = partial(COMMAND.add_config_option, parser)
    option("steps", "mask updates to the targets", type=integer_at_least(1))
    option("epochs_per_step", "epochs between mask updates", type=integer_at_least(1))
    option("hold_epochs", "epochs at the targets, masks kept", type=integer_at_least(1))
    option("schedule", "tfmot schedule", choices=SCHEDULES)
    return parser


def parse_args(argv=None):
    """The arguments of ``argv``; a bad one exits (code 2) with one message before any work."""
    from models.train import check_out

    parser = build_parser()
    args = parser.parse_args(argv)
    check_out(parser, args)
    if args.sweep and (args.input_sparsity is not None or args.recurrent_sparsity is not None):
        parser.error("--sweep chooses the ratios: give --input-sparsity / --recurrent-sparsity or --sweep, not both")
    if not args.sweep and args.input_sparsity is None:
        parser.error("give --input-sparsity (and --recurrent-sparsity), or --sweep to choose them")
    if not args.sweep and args.recurrent_sparsity is None:
        args.recurrent_sparsity = args.input_sparsity
    return args


def run(args) -> dict:
    """Dense training, sweep (``--sweep``), pruning and fine-tune; the files are written only at the end."""
    from models.train import FineTune

    baseline = COMMAND.train_dense_baseline(args)
    config = COMMAND.config_of(args)
    finetune = FineTune.quantized(args.finetune_epochs)
    quantizers = finetune.quantizers
    sweep = None
    if args.sweep:
        sweep_config = PruningConfig(
            steps=1,
            epochs_per_step=1,
            hold_epochs=args.sweep_epochs - 1,
            schedule="constant",
            learning_rate=args.learning_rate,
            batch_size=args.batch_size,
        )
        sweep = sensitivity(
            baseline.model,
            *baseline.data,
            args.ratios,
            tolerance=args.tolerance,
            config=sweep_config,
            quantizers=quantizers,
        )
        args.input_sparsity = sweep.choice["input_sparsity"]
        args.recurrent_sparsity = sweep.choice["recurrent_sparsity"]
        print(f"[prune] sweep chose input {args.input_sparsity:g}, recurrent {args.recurrent_sparsity:g}")
    result = compress(baseline.model, *baseline.data, args.input_sparsity, args.recurrent_sparsity, config, finetune)
    for entry in result.run.history:
        accuracy = entry.get("held_out_accuracy")
        print(
            f"[prune] step {entry['step']} (epoch {entry['epoch'] + 1}): input {entry.get('input_sparsity', 0):.3f}, "
            f"recurrent {entry.get('recurrent_sparsity', 0):.3f}"
            + ("" if accuracy is None else f", held-out accuracy {accuracy:.3f}")
        )
    n_in = baseline.data[0].shape[2]
    memory = memory_bits(n_in, args.units, args.input_sparsity, args.recurrent_sparsity, quantizers)
    print(
        f"[prune] rbs_lstm ({args.input_sparsity:g}/{args.recurrent_sparsity:g}): pruned float accuracy "
        f"{result.pruned_accuracy:.3f}, after conversion and fine-tune {result.held_out_accuracy:.3f}, "
        f"{result.model.count_params():,} parameters, LSTM memory {memory:,} bits"
    )
    entry = {
        "held_out_accuracy": result.held_out_accuracy,
        "input_sparsity": args.input_sparsity,
        "recurrent_sparsity": args.recurrent_sparsity,
        "lstm_memory_bits": memory,
    }
    details = {
        "pruned_accuracy": result.pruned_accuracy,
        "conversion_error": result.conversion_error,
        "history": result.run.history,
        "sensitivity": None if sweep is None else sweep.as_json(),
    }
    return COMMAND.write_results(args, baseline, result.model, entry, config, details)


def main(argv=None) -> int:
    return COMMAND.main(argv, parse_args, run)


if __name__ == "__main__":
    run_command(main, COMMAND.tag)
