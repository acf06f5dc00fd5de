"""What the compression command lines (``python -m models.admm``, ``python -m models.pruning``) share.

Each is a ``CompressionCommand``: it trains the dense baseline on the data of its arguments
(``models.train``'s recipe, ``train_dense_baseline``), compresses it with its own algorithm
(the module's ``run``), and writes ``dense_lstm.h5``, the compressed model and
``train_report.json`` (as ``models.train`` writes it, plus the algorithm's section) into
``--out`` only once everything succeeded (``write_results``). ``base_parser`` has the options
every one has (the task, the dense baseline's recipe, ``--out``, ``--finetune-epochs``), and
``main`` turns a data error or the algorithm's divergence into one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from models.classifier_surgery import INITIALIZER_WARNING


@dataclass
class DenseBaseline:
    """The start of a compression command line: its data and the dense classifier trained on it."""

    data: tuple  # (x, y, x_test, y_test)
    description: dict  # the data set's, as train_report.json holds it
    model: object
    accuracy: float  # held out


@dataclass(frozen=True)
class CompressionCommand:
    """One compression command line.

    module: ``models.admm``: run as ``python -m <module>``; ``--out`` defaults to
        ``build/<section>`` and ``train_report.json`` holds the settings under ``<section>``,
        the last part of the name (``admm``).
    tag: what its lines start with (``[tag]``).
    compressed: the compressed model's name: its file ``<compressed>.h5`` and report entry.
    config_class: the algorithm's settings (a dataclass); its fields are options of the same
        name (``config_of``), ``batch_size`` and ``learning_rate`` among them.
    error: the algorithm's divergence error.
    """

    module: str
    tag: str
    compressed: str
    config_class: type
    error: type

    @property
    def section(self) -> str:
        return self.module.rpartition(".")[2]

    def base_parser(self, docstring: str, finetune_epochs: int, finetune_minimum: int = 1) -> argparse.ArgumentParser:
        """The parser with the options every compression command line has; the module adds its own."""
        from host.argument_types import integer_at_least
        from models.train import add_recipe_arguments, add_task_arguments

        defaults = self.config_class()
        parser = argparse.ArgumentParser(
            prog=f"python -m {self.module}",
            description=docstring.split("\n\n")[0],
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        parser.add_argument(
            "--out", default=f"build/{self.section}", help="folder for the models (.h5) and train_report.json"
        )
        add_task_arguments(parser)
        add_recipe_arguments(
            parser, 10, "epochs of the dense LSTM before compression", defaults.batch_size, defaults.learning_rate
        )
        parser.add_argument(
            "--finetune-epochs",
            type=integer_at_least(finetune_minimum),
            default=finetune_epochs,
            help=f"fine-tune epochs of the compressed model ({self.compressed})",
        )
        return parser

    def add_config_option(self, parser: argparse.ArgumentParser, name: str, help: str, **options) -> None:
        """The option ``--<name>`` (dashes for underscores) of the settings' field ``name``, its
        default the field's; ``options``: more of ``add_argument``'s (``type``, ``choices``)."""
        default = getattr(self.config_class(), name)
        parser.add_argument(f"--{name.replace('_', '-')}", default=default, help=help, **options)

    def config_of(self, args):
        """The algorithm's settings from ``args`` (a field with no option keeps its default)."""
        names = [field.name for field in fields(self.config_class) if hasattr(args, field.name)]
        return self.config_class(**{name: getattr(args, name) for name in names})

    def train_dense_baseline(self, args) -> DenseBaseline:
        """The data of ``args`` and a dense LSTM classifier trained on it with ``args``' recipe."""
        from models.train import DENSE_BASELINE, build_dense_classifier, fit, load_task_data

        x, y, x_test, y_test, description = load_task_data(args)
        classes = len(description["class_names"])
        clips = f"{len(x)} train / {len(x_test)} held-out clips"
        print(f"[{self.tag}] data: {description['kind']}, {clips}, {classes} classes")
        dense = build_dense_classifier(x.shape[1], x.shape[2], classes, args.units)
        accuracy = fit(dense, x, y, x_test, y_test, args.epochs, args.batch_size, args.learning_rate, DENSE_BASELINE)
        print(f"[{self.tag}] dense LSTM: held-out accuracy {accuracy:.3f}, {dense.count_params():,} parameters")
        return DenseBaseline((x, y, x_test, y_test), description, dense, accuracy)

    def write_results(self, args, baseline: DenseBaseline, model, entry: dict, config, details: dict) -> dict:
        """Write ``dense_lstm.h5``, ``<compressed>.h5`` (``model``) and ``train_report.json`` into
        ``--out``, all or none (``models.saving.write_staged``), and return the report: the data
        set, each model's path, parameters and held-out accuracy (the compressed model's in
        ``entry``, with what else it says of it), and under ``section`` the settings
        (``config``), the epochs and ``details``."""
        from models.saving import write_staged
        from models.train import DENSE_BASELINE

        out = Path(args.out)
        saved = {
            DENSE_BASELINE: (baseline.model, {"held_out_accuracy": baseline.accuracy}),
            self.compressed: (model, entry),
        }
        report = {
            "dataset": baseline.description,
            "models": {
                name: {"path": str(out / f"{name}.h5"), "params": keras_model.count_params(), **facts}
                for name, (keras_model, facts) in saved.items()
            },
            self.section: {
                "config": asdict(config),
                "dense_epochs": args.epochs,
                "finetune_epochs": args.finetune_epochs,
                **details,
            },
        }
        writers = {f"{name}.h5": keras_model.save for name, (keras_model, _) in saved.items()}
        writers["train_report.json"] = lambda path: path.write_text(json.dumps(report, indent=2) + "\n")
        write_staged(out, writers)
        print(f"[{self.tag}] {', '.join(writers)} -> {out}")
        return report

    def main(self, argv, parse_args, run) -> int:
        """``run(parse_args(argv))``; a data error or the algorithm's ``error`` is one line on
        stderr and exit code 2 (a bad argument exits 2 in ``parse_args``, before any work)."""
        from models.quiet import quiet_imports
        from models.train import DataError

        quiet_imports()
        warnings.filterwarnings("ignore", message=INITIALIZER_WARNING)  # saving the head built from Dense's config
        args = parse_args(argv)
        try:
            run(args)
        except (DataError, self.error) as err:
            print(f"[{self.tag}] error: {err}", file=sys.stderr)
            return 2
        return 0
