"""``python -m models.admm``: ADMM training of a dense LSTM classifier towards a block-circulant one (E-RNN).

The classifier is one Keras ``LSTM`` or QKeras ``QLSTM`` right after the input, then a head
(``models.classifier_surgery`` finds them and rebuilds the classifier around the new layer).
E-RNN (HPCA 2019) trains the block-circulant structure in as a constraint: minimise the task loss
``f(W)`` over the LSTM's kernel and recurrent kernel subject to ``W`` block-circulant (the set
``S``). ADMM splits it with a copy ``Z`` of the weights that lives in ``S`` and a scaled dual
``U`` (one each per matrix, kernel ``(n_in, 4H)`` with ``block_size``, recurrent kernel ``(H, 4H)``
with ``recurrent_block_size``). Iteration ``i = 1 .. iterations``:

1. ``epochs_per_iteration`` epochs of Adam on ``f(W) + rho_i / 2 * ||W - Z + U||^2`` (both matrices);
2. ``Z <- proj_S(W + U)`` (``models.circulant.bc_project``, the Euclidean projection);
3. ``U <- U + W - Z``;
4. primal residual ``||W - Z|| / ||W||`` (both matrices joined) and dual residual
   ``||Z - Z_prev|| / ||W||`` recorded.

``rho_i = rho * rho_growth ** (i - 1)``: the penalty tightens so that ``W`` ends close to ``S``.
When rho grows, ``U`` (the dual divided by rho) is divided by the same factor, so the unscaled
dual is kept (Boyd et al. 2011, section 3.4.1). ``Z`` starts at ``proj_S(W)`` and ``U`` at 0;
the residual of iteration 0 is the plain projection error of the dense model.

**Divergence** (``ADMMDivergedError``, raised after the bar closes; nothing is saved): a
non-finite training loss (checked every batch) or weight, or a primal residual that is not finite,
has grown ``patience`` iterations in a row, or exceeds ``growth_limit`` times the iteration-0
residual.

Then the structure is fixed (E-RNN's "masked retraining"): ``BlockCirculantLSTM.from_dense`` of the
final ``W`` (the hard projection), the layers after the LSTM rebuilt with the same weights (a
plain ``Dense`` becomes a ``QDense`` when ``head_quantizer`` is given; ``replace_lstm``), and ordinary training of
that model, which keeps the structure because it is built into the layer. With the quantizers of
``models.train`` (what the CLI uses) the result is quantization-aware and goes straight into
``hls_project.convert``.

The CLI trains the dense baseline (``models.train``'s recipe), runs ADMM and the fine-tune, and
writes ``dense_lstm.h5``, ``bc_lstm.h5`` and ``train_report.json`` (the data set description,
both models' held-out accuracy and parameters, as ``models.train`` writes it, so ``overlay
build`` finds the data set; plus ``admm``: the settings and the history per iteration). Files
are written only once everything succeeded. What it shares with ``models.pruning``'s is
``models.compression_cli``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from host.cli import run_command
from models.circulant import BCShape, bc_project, bc_to_dense
from models.classifier_surgery import dense_weights, replace_lstm, trainable_copy
from models.compression_cli import CompressionCommand


class ADMMDivergedError(RuntimeError):
    """ADMM (or the fine-tune after it) diverged: the message names the iteration and the value."""


@dataclass(frozen=True)
class ADMMConfig:
    """The ADMM schedule (see the module docstring).

    iterations: ADMM iterations (Z and U updates).
    epochs_per_iteration: Adam epochs on the penalised loss between two updates.
    rho: penalty of the first iteration; ``rho_growth`` (>= 1) multiplies it every iteration.
    learning_rate, batch_size: Adam's, as in ``models.train``.
    patience: iterations in a row the primal residual may grow before the run counts as diverged.
    growth_limit: largest allowed primal residual, as a multiple of the iteration-0 residual.
    """

    iterations: int = 6
    epochs_per_iteration: int = 2
    rho: float = 0.002
    rho_growth: float = 2.0
    learning_rate: float = 5e-3
    batch_size: int = 32
    patience: int = 3
    growth_limit: float = 2.0

    def __post_init__(self):
        for name in ("iterations", "epochs_per_iteration", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"'{name}' must be an integer >= 1, got {value!r}")
        for name, minimum in (("rho", 0.0), ("learning_rate", 0.0), ("rho_growth", 1.0), ("growth_limit", 1.0)):
            value = getattr(self, name)
            if not (math.isfinite(value) and (value >= minimum if minimum else value > minimum)):
                raise ValueError(
                    f"'{name}' must be a finite number {'>=' if minimum else '>'} {minimum:g}, got {value}"
                )


@dataclass
class ADMMRun:
    """What ``admm`` returns: the final dense ``W`` (and the model holding it) and the history."""

    model: object  # the ADMM-trained copy of the dense classifier (carries the penalty as a loss)
    kernel: np.ndarray  # final W, (n_in, 4H)
    recurrent_kernel: np.ndarray  # (H, 4H)
    bias: np.ndarray  # (4H,)
    history: list = field(default_factory=list)  # one dict per iteration, iteration 0 first


@dataclass
class ADMMResult:
    """What ``compress`` returns."""

    model: object  # the fine-tuned block-circulant classifier
    held_out_accuracy: float
    projection_error: float  # relative error of the hard projection of the final W
    run: ADMMRun


def shapes_for(lstm, block_size, recurrent_block_size=None) -> tuple:
    """``(kernel BCShape, recurrent BCShape)`` of an LSTM layer (``recurrent_block_size``: default ``block_size``)."""
    kernel, recurrent, _ = dense_weights(lstm)
    units = recurrent.shape[0]
    recurrent_block_size = block_size if recurrent_block_size is None else recurrent_block_size
    return (
        BCShape.create(kernel.shape[0], units, block_size),
        BCShape.create(units, units, recurrent_block_size, "recurrent_block_size"),
    )


def project(matrix, shape: BCShape) -> np.ndarray:
    """The dense matrix of the Euclidean projection of ``matrix`` onto block-circulant ones."""
    return bc_to_dense(bc_project(matrix, shape)[0], shape)


def divergence(residuals, patience: int, growth_limit: float) -> str | None:
    """Why the primal residual sequence (iteration 0 first) counts as diverged, or None."""
    last = residuals[-1]
    if not math.isfinite(last):
        return f"primal residual {last}"
    recent = residuals[-patience - 1 :]
    if len(recent) == patience + 1 and all(b > a for a, b in zip(recent, recent[1:], strict=False)):
        return f"primal residual {last:.4g} grew {patience} iterations in a row (from {recent[0]:.4g})"
    if last > growth_limit * residuals[0]:
        return f"primal residual {last:.4g} exceeds {growth_limit:g} x its start {residuals[0]:.4g}"
    return None


def _admm_callback(lstm, shapes, config: ADMMConfig, history: list, validation):
    """The Keras callback that runs the Z and U updates every ``epochs_per_iteration`` epochs."""
    import tensorflow as tf

    cell = lstm.cell
    variables = (cell.kernel, cell.recurrent_kernel)

    class ADMMUpdates(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.error = None
            self.rho = tf.Variable(config.rho, trainable=False, dtype=tf.float32, name="admm_rho")
            W = [v.numpy().astype(np.float64) for v in variables]
            self.Z = [project(w, shape) for w, shape in zip(W, shapes, strict=True)]
            self.U = [np.zeros_like(w) for w in W]
            # the penalty's target Z - U, one per matrix
            self.targets = [
                tf.Variable(z.astype(np.float32), trainable=False, name=f"admm_target_{k}")
                for k, z in enumerate(self.Z)
            ]

        def on_train_begin(self, logs=None):
            W = [v.numpy().astype(np.float64) for v in variables]
            history.append(self.record(0, W, self.Z, None, None))

        def penalty(self):
            squares = [tf.reduce_sum(tf.square(v - t)) for v, t in zip(variables, self.targets, strict=True)]
            return 0.5 * self.rho * tf.add_n(squares)

        def record(self, iteration, W, Z, Z_prev, loss) -> dict:
            norm = math.sqrt(sum(float(np.sum(w**2)) for w in W)) or 1.0
            parts = [float(np.linalg.norm(w - z)) for w, z in zip(W, Z, strict=True)]
            entry = {
                "iteration": iteration,
                "rho": float(self.rho.numpy()),
                "loss": loss,
                "primal_residual": math.sqrt(sum(p**2 for p in parts)) / norm,
                "kernel_residual": parts[0] / (float(np.linalg.norm(W[0])) or 1.0),
                "recurrent_residual": parts[1] / (float(np.linalg.norm(W[1])) or 1.0),
            }
            if Z_prev is not None:
                moved = math.sqrt(sum(float(np.sum((z - p) ** 2)) for z, p in zip(Z, Z_prev, strict=True)))
                entry["dual_residual"] = moved / norm
            if validation is not None:
                entry["accuracy"] = float(self.model.evaluate(*validation, verbose=0, return_dict=True)["accuracy"])
                entry["structured_accuracy"] = self.structured_accuracy(Z)
            return entry

        def structured_accuracy(self, Z) -> float:
            """Held-out accuracy with ``W`` replaced by ``Z`` (float, no quantizers), ``W`` restored."""
            saved = [v.numpy() for v in variables]
            for v, z in zip(variables, Z, strict=True):
                v.assign(z.astype(np.float32))
            metrics = self.model.evaluate(*validation, verbose=0, return_dict=True)
            for v, w in zip(variables, saved, strict=True):
                v.assign(w)
            return float(metrics["accuracy"])

        def fail(self, message: str) -> None:
            self.error = ADMMDivergedError(message)
            self.model.stop_training = True

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                iteration = self.iteration_of(self.epoch)
                self.fail(
                    f"ADMM diverged at iteration {iteration} (epoch {self.epoch + 1}, batch {batch}): loss {loss}"
                )

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            if epoch % config.epochs_per_iteration == 0 and epoch:
                # a new iteration: rho grows, the scaled dual shrinks by the same factor
                self.rho.assign(self.rho * config.rho_growth)
                self.U = [u / config.rho_growth for u in self.U]
                for t, z, u in zip(self.targets, self.Z, self.U, strict=True):
                    t.assign((z - u).astype(np.float32))

        def iteration_of(self, epoch) -> int:
            return epoch // config.epochs_per_iteration + 1

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            if self.error is not None or (epoch + 1) % config.epochs_per_iteration:
                return
            iteration = self.iteration_of(epoch)
            W = [v.numpy().astype(np.float64) for v in variables]
            bad = [v.name for v, w in zip(variables, W, strict=True) if not np.all(np.isfinite(w))]
            if bad:
                return self.fail(f"ADMM diverged at iteration {iteration}: non-finite weights in {', '.join(bad)}")
            Z_prev = self.Z
            self.Z = [project(w + u, shape) for w, u, shape in zip(W, self.U, shapes, strict=True)]
            self.U = [u + w - z for u, w, z in zip(self.U, W, self.Z, strict=True)]
            for t, z, u in zip(self.targets, self.Z, self.U, strict=True):
                t.assign((z - u).astype(np.float32))
            entry = self.record(iteration, W, self.Z, Z_prev, float(logs.get("loss", float("nan"))))
            history.append(entry)
            logs["residual"] = entry["primal_residual"]  # shown by the progress bar
            reason = divergence([h["primal_residual"] for h in history], config.patience, config.growth_limit)
            if reason is not None:
                self.fail(f"ADMM diverged at iteration {iteration}: {reason}")

    return ADMMUpdates()


def admm(
    model, x, y, block_size, recurrent_block_size=None, config: ADMMConfig | None = None, validation=None, label="admm"
) -> ADMMRun:
    """ADMM from a trained classifier (one Keras ``LSTM`` or QKeras ``QLSTM`` right after the input, then a head).

    ``model`` is not changed: ADMM trains a copy. ``validation``: ``(x, y)`` held out, for the
    history's ``structured_accuracy`` (the float model with ``W`` replaced by ``Z``). Raises
    ``ADMMDivergedError`` (see the module docstring) and ValueError for block sizes the
    matrices cannot take.
    """
    from models.train import ProgressBar, compile_classifier

    config = config or ADMMConfig()
    copy, lstm = trainable_copy(model)
    shapes = shapes_for(lstm, block_size, recurrent_block_size)
    history: list = []
    updates = _admm_callback(lstm, shapes, config, history, validation)
    copy.add_loss(updates.penalty)
    compile_classifier(copy, config.learning_rate)
    epochs = config.iterations * config.epochs_per_iteration
    copy.fit(
        x,
        y,
        epochs=epochs,
        batch_size=config.batch_size,
        verbose=0,
        callbacks=[updates, ProgressBar(epochs, f"{label} k={shapes[0].block_size}/{shapes[1].block_size}")],
    )
    if updates.error is not None:
        raise updates.error
    kernel, recurrent_kernel, bias = dense_weights(lstm)
    return ADMMRun(copy, kernel, recurrent_kernel, bias, history)


def hard_projection(
    model, block_size, recurrent_block_size=None, weights=None, quantizers=None, head_quantizer=None, name="bc_lstm"
) -> tuple:
    """``(block-circulant classifier, relative projection error)`` from a dense classifier.

    The LSTM becomes ``BlockCirculantLSTM.from_dense`` of ``weights`` (``(kernel, recurrent_kernel,
    bias)``; default: the model's own), with ``quantizers`` (keyword arguments of the layer, e.g.
    ``models.train.quantizer_kwargs()``); the layers after it keep their weights, a ``Dense``
    becoming a ``QDense`` quantized by ``head_quantizer`` when one is given.
    """
    from models.bc_lstm import BlockCirculantLSTM

    structure = {"block_size": block_size, "recurrent_block_size": recurrent_block_size}
    return replace_lstm(model, BlockCirculantLSTM, structure, weights, quantizers, head_quantizer, name)


def compress(
    model, x, y, x_test, y_test, block_size, recurrent_block_size=None, config=None, finetune=None, label="admm"
) -> ADMMResult:
    """ADMM (``config``: an ``ADMMConfig``), hard projection and fine-tune (``finetune``: a
    ``models.train.FineTune``, default 5 float epochs) of a trained classifier. Raises
    ``ADMMDivergedError`` when ADMM or the fine-tune diverges."""
    from models.train import FineTune

    config = config or ADMMConfig()
    finetune = finetune or FineTune()
    run = admm(model, x, y, block_size, recurrent_block_size, config, (x_test, y_test), label)
    final = (run.kernel, run.recurrent_kernel, run.bias)
    bc_model, error = hard_projection(run.model, block_size, recurrent_block_size, final, **finetune.quantization)
    accuracy = finetune.run(bc_model, (x, y, x_test, y_test), config, label, ADMMDivergedError)
    return ADMMResult(bc_model, accuracy, error, run)


# -- command line -------------------------------------------------------------------------------


COMMAND = CompressionCommand("models.admm", "admm", "bc_lstm", ADMMConfig, ADMMDivergedError)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m models.admm``: ``COMMAND``'s options, then ADMM's."""
    from host.argument_types import float_at_least, integer_at_least, positive_float

    parser = COMMAND.base_parser(__doc__, finetune_epochs=10)
    parser.add_argument("--block-size", type=integer_at_least(1), default=8, help="circulant block size of the kernel")
    parser.add_argument(
        "--recurrent-block-size", type=integer_at_least(1), help="of the recurrent kernel (default: --block-size)"
    )
    option = partial(COMMAND.add_config_option, parser)
    option("iterations", "ADMM iterations", type=integer_at_least(1))
    option("epochs_per_iteration", "epochs between updates", type=integer_at_least(1))
    option("rho", "penalty of the first iteration", type=positive_float)
    option("rho_growth", "rho's factor per iteration", type=float_at_least(1))
    option("patience", "iterations the residual may grow in a row", type=integer_at_least(1))
    option("growth_limit", "largest residual / its start", type=float_at_least(1))
    return parser


def parse_args(argv=None):
    """The arguments of ``argv``; a bad one exits (code 2) with one message before any work."""
    from models.train import check_out

    parser = build_parser()
    args = parser.parse_args(argv)
    check_out(parser, args)
    if args.recurrent_block_size is None:
        args.recurrent_block_size = args.block_size
    n_features = args.height * args.width * args.channels
    try:
        BCShape.create(n_features, args.units, args.block_size, "--block-size")
        BCShape.create(args.units, args.units, args.recurrent_block_size, "--recurrent-block-size")
    except ValueError as err:
        parser.error(f"{err} (--units {args.units}, {n_features} features per frame)")
    return args


def run(args) -> dict:
    """Dense training, ADMM and fine-tune as ``args`` say; the files are written only at the end."""
    from models.train import FineTune

    baseline = COMMAND.train_dense_baseline(args)
    config = COMMAND.config_of(args)
    finetune = FineTune.quantized(args.finetune_epochs)
    result = compress(baseline.model, *baseline.data, args.block_size, args.recurrent_block_size, config, finetune)
    for entry in result.run.history:
        accuracy = entry.get("structured_accuracy")
        print(
            f"[admm] iteration {entry['iteration']}: rho {entry['rho']:.3g}, primal residual "
            f"{entry['primal_residual']:.4f}" + ("" if accuracy is None else f", projected accuracy {accuracy:.3f}")
        )
    print(
        f"[admm] bc_lstm (k={args.block_size}/{args.recurrent_block_size}): projection error "
        f"{result.projection_error:.4f}, held-out accuracy after fine-tune {result.held_out_accuracy:.3f}, "
        f"{result.model.count_params():,} parameters"
    )
    entry = {
        "held_out_accuracy": result.held_out_accuracy,
        "block_size": args.block_size,
        "recurrent_block_size": args.recurrent_block_size,
    }
    details = {"projection_error": result.projection_error, "history": result.run.history}
    return COMMAND.write_results(args, baseline, result.model, entry, config, details)


def main(argv=None) -> int:
    return COMMAND.main(argv, parse_args, run)


if __name__ == "__main__":
    run_command(main, COMMAND.tag)
