"""Keras model -> hls4ml model, with every type taken from the layers' quantizers."""

from __future__ import annotations

import functools

import hls4ml
import numpy as np

from hls_project.families import FAMILY_LAYERS
from hls_project.input_stream import RESET_CONFIG_KEY
from hls_project.names import NAMES_CONFIG_KEY, LayerNames, RenamedModel
from host import boards
from models.quantization import LSTMTypes

# The largest reuse factor this flow accepts: the most serial design the build's search for one
# that fits (``overlay.estimate.largest_fitting_setting``) tries; a larger one would be written
# into the C++ as given and estimated at next to 0 frames/s.
MAX_REUSE_FACTOR = 4096


def family_layers(model) -> list:
    """The model's layers of a registered LSTM family, in order."""
    return [layer for layer in model.layers if type(layer).__name__ in FAMILY_LAYERS]


def convert(
    model,
    output_dir,
    backend="Vivado",
    io_type="io_parallel",
    board=None,
    precision=None,
    reuse_factor=1,
    head_reuse_factor=None,
    clock_period=None,
    reset_port=False,
    echo=print,
    calibration=None,
    folding=None,
):
    """Convert a Keras model holding our LSTM layers; returns the (uncompiled) hls4ml model, whose
    ``predict`` refuses NaN or infinite input (``refuse_non_finite``).

    The model input gets the first LSTM layer's input type (same rounding as Keras).
    Every layer's types come from its quantizers: our LSTM layers', QKeras layers' (``QDense``), and
    hls4ml's exact sums of them. A stock layer without quantizers (float weights outside a QKeras
    layer, e.g. a float ``Dense``) or a softmax (hls4ml's exp and 1/x tables, addressed by the top
    bits of its input type: on a wide sum every class comes out equal) is refused
    (``check_stock_layers``), unless ``precision`` is given: then it is the type of those layers
    (hls4ml's default ``ap_fixed<16,6>`` otherwise), unchecked against Keras. A NaN or infinite
    weight is refused, naming the layer and the weight (``check_finite_weights``). ``reuse_factor`` is the LSTM layers';
    the stock dense layers (e.g. the classifier head) get their own parallelism,
    ``head_reuse_factor`` (see ``stock_dense_parallelism``). ``clock_period``: the HLS clock in ns
    (hls4ml's default, 5 ns, when None). ``reset_port``: every stateful LSTM layer takes its
    reset as an argument, from a second model input ``lstm_reset`` (for the accelerator top;
    ``hls_project.input_stream.AddResetPort``). Datapath types derived from the four
    QKeras quantizers (``models.quantization.derive_datapath_types``) are printed with ``echo``.
    ``folding``: ``{LSTM layer name: {folding stage: reuse factor}}`` (``overlay.folding``): each
    named stage of the layer at its own reuse factor, the others at ``reuse_factor``.
    ``calibration``: optional clips (clips, frames, features) profiled through the bit-accurate
    reference (``hls_project.profile.warn_on_saturation``): a loud warning, with the counts, for
    every variable whose type saturates or wraps on them.

    Every layer reaches hls4ml under a C++ identifier (``hls_project.names``: a name that is not one,
    such as ``a//b`` or ``9lives``, becomes its sanitized form plus a hash of it, printed with ``echo``);
    errors name the Keras layers, and the Keras names stay in the config (``KerasLayerNames``,
    ``hls_project.names.keras_name``) and in a comment of ``firmware/myproject.cpp``. ``output_dir``
    is refused (``check_output_dir``) if the C-simulation's build script cannot carry it.
    """
    layers = family_layers(model)
    if not layers:
        names = ", ".join(sorted({type(layer).__name__ for layer in model.layers}))
        raise ValueError(f"model '{model.name}' has no {' / '.join(sorted(FAMILY_LAYERS))} layer (it has: {names})")
    if io_type not in ("io_parallel", "io_stream"):
        raise ValueError(f"io_type must be 'io_parallel' or 'io_stream', got {io_type!r}")
    check_reuse_factor("reuse_factor", reuse_factor)
    if head_reuse_factor is not None:
        check_reuse_factor("head_reuse_factor", head_reuse_factor)
    check_output_dir(output_dir)
    check_finite_weights(model)
    if precision is None:
        check_stock_layers(model)
    names = LayerNames.for_model(model)
    for name, identifier in names.renamed.items():
        echo(f"[convert] layer {name!r} is {identifier!r} in C++ (its name is not a C++ identifier)")
    for layer in layers:
        for name, reason in layer.cell.derived_types.items():
            echo(f"[convert] layer '{layer.name}': {name} not set -> {layer.cell.fixed_types[name].cpp()} ({reason})")
    renamed = RenamedModel(model, names)
    with names.in_errors():
        config = hls4ml.utils.config_from_keras_model(
            renamed,
            granularity="name",
            backend=backend,
            default_precision=precision or "ap_fixed<16,6>",
            default_reuse_factor=int(reuse_factor),
        )
        stock_dense_parallelism(model, config, backend, head_reuse_factor, echo, names.to_hls)
        set_folding(config, folding or {}, {layer.name for layer in layers}, names.to_hls)
        config["Model"][RESET_CONFIG_KEY] = bool(reset_port)
        first, input_name = layers[0], names.to_hls[model.input_names[0]]
        if first.input is model.input and input_name in config["LayerName"]:
            # the C-sim rounds floats into the input type exactly as the layer's input_quantizer does
            input_type = LSTMTypes.from_fixed_types(first.cell.fixed_types, first.name).input
            config["LayerName"][input_name]["Precision"] = input_type.cpp()
        kwargs = accelerator_options(board) if backend == "VivadoAccelerator" and board else {}
        if clock_period is not None:
            kwargs["clock_period"] = clock_period
        hls_model = hls4ml.converters.convert_from_keras_model(
            renamed,
            output_dir=str(output_dir),
            backend=backend,
            io_type=io_type,
            hls_config=config,
            project_name="myproject",
            **kwargs,
        )
    hls_model.config.config["KerasModel"] = model  # hls4ml saves it (keras_model.keras) with its own names
    hls_model.config.config[NAMES_CONFIG_KEY] = names.to_keras
    if calibration is not None:
        from hls_project.profile import warn_on_saturation

        warn_on_saturation(model, hls_model, calibration, echo)
    return refuse_non_finite(hls_model)


def check_finite_weights(model) -> None:
    """Refuse a model any of whose layers holds a NaN or infinite weight, naming the layer and the
    weight: hls4ml would write it as a number (a NaN as -3.6e16), so the hardware would compute
    finite outputs where Keras gives NaN."""
    for layer in model.layers:
        for weight in layer.weights:
            values = np.asarray(weight.numpy())
            bad = np.count_nonzero(~np.isfinite(values)) if values.dtype.kind == "f" else 0
            if bad:
                raise ValueError(
                    f"layer '{layer.name}': weight '{weight.name}' holds {bad} NaN or infinite value(s) of "
                    f"{values.size}: the hardware cannot compute what Keras does; retrain or fix the weights"
                )


def is_softmax(layer) -> bool:
    """Whether a Keras layer is or ends in a softmax (a ``Softmax`` layer, or ``activation="softmax"``)."""
    activation = getattr(layer, "activation", None)
    return type(layer).__name__ == "Softmax" or getattr(activation, "__name__", activation) == "softmax"


def check_stock_layers(model) -> None:
    """Refuse a stock layer whose types would not come from quantizers (``convert``'s rule): float
    weights outside a QKeras layer (hls4ml would round them to its default type, Keras does not),
    or a softmax (hls4ml's tables do not compute Keras' softmax); each names the layer and what to do."""
    for layer in model.layers:
        if type(layer).__name__ in FAMILY_LAYERS:
            continue
        what = f"layer '{layer.name}' ({type(layer).__name__})"
        if any(weight.dtype.is_floating for weight in layer.weights) and not hasattr(layer, "quantizers"):
            raise ValueError(
                f"{what} has no quantizers: hls4ml would round its weights to its default ap_fixed<16,6>, "
                "Keras does not; use a QKeras layer (QDense with kernel_quantizer and bias_quantizer), "
                "or pass precision= to convert to take that type unchecked"
            )
        if is_softmax(layer):
            raise ValueError(
                f"{what} computes a softmax: hls4ml's exp and 1/x tables are addressed by the top bits of "
                "its input type and do not compute Keras' softmax (on a wide sum every class comes out "
                "equal); deploy the logits (the class is their argmax), or pass precision= to convert "
                "to take hls4ml's softmax unchecked"
            )


def set_folding(config: dict, folding: dict, lstm_names: set, to_hls: dict) -> None:
    """Each LSTM layer's folding (``{stage: reuse factor}``) into its ``config["LayerName"]``
    entry (``FOLDING_CONFIG_KEY``); a layer that is not one of the model's LSTM layers, or a reuse
    factor outside 1 .. ``MAX_REUSE_FACTOR``, is refused. The stage names are checked by the layer
    (``LSTMFamilyLayer.folding``)."""
    from hls_project.lstm_cell import FOLDING_CONFIG_KEY

    for name, stages in folding.items():
        if name not in lstm_names:
            raise ValueError(f"folding names layer {name!r}, which is not an LSTM layer of the model")
        for stage, factor in stages.items():
            check_reuse_factor(f"the reuse factor of layer {name!r}, stage {stage!r}", factor)
        config["LayerName"][to_hls[name]][FOLDING_CONFIG_KEY] = {stage: int(f) for stage, f in stages.items()}


def check_reuse_factor(name: str, value) -> None:
    """Refuse a reuse factor that is not an integer from 1 to ``MAX_REUSE_FACTOR``, naming ``name``."""
    if not (float(value) == int(value) and 1 <= int(value) <= MAX_REUSE_FACTOR):
        raise ValueError(f"{name} must be an integer from 1 to {MAX_REUSE_FACTOR}, got {value}")


# characters hls4ml's build_lib.sh cannot carry in the folder it compiles in: it pastes the
# folder into a C string literal (-D WEIGHTS_DIR="..."), where they would end or escape it
UNSAFE_PATH_CHARACTERS = '"\\'


def check_output_dir(output_dir) -> None:
    """Refuse an output folder the C-simulation cannot be built in (a double quote, a backslash or
    a control character in its absolute path), naming the folder and the character."""
    from pathlib import Path

    path = str(Path(output_dir).absolute())
    bad = [char for char in path if char in UNSAFE_PATH_CHARACTERS or ord(char) < 32 or ord(char) == 127]
    if bad:
        raise ValueError(
            f"output folder {path!r} contains {bad[0]!r}: hls4ml's C-simulation build pastes the folder into "
            "C++ source, where double quotes, backslashes and control characters break it; use another folder"
        )


def refuse_non_finite(hls_model):
    """Make this hls4ml model's ``predict`` raise ``ValueError`` on NaN or infinite input, as the host
    does (the C-simulation would turn them into numbers that differ from the NumPy reference).
    Only the instance's ``predict`` is wrapped: the model stays hls4ml's ``ModelGraph``."""
    predict = hls_model.predict

    @functools.wraps(predict)
    def checked_predict(x, *args, **kwargs):
        for array in x if isinstance(x, list | tuple) else [x]:
            if not np.all(np.isfinite(np.asarray(array, dtype=np.float64))):
                raise ValueError("the input of the C-simulation contains NaN or infinity")
        return predict(x, *args, **kwargs)

    hls_model.predict = checked_predict
    return hls_model


def hls4ml_boards() -> dict:
    """hls4ml's VivadoAccelerator boards by name (its supported_boards.json: part, templates)."""
    import json
    from pathlib import Path

    import hls4ml.backends.vivado_accelerator as accelerator

    return json.loads((Path(accelerator.__file__).parent / "supported_boards.json").read_text())


def board_part(board: str) -> str:
    """The FPGA part of ``board`` (our record, ``host.boards``), a board hls4ml's VivadoAccelerator
    backend must know (it writes the board's block design); passed along so that hls4ml does not
    warn that its default part is not the board's."""
    known = hls4ml_boards()
    if board not in known:
        raise ValueError(f"hls4ml's VivadoAccelerator backend knows no board {board!r} (it knows {', '.join(known)})")
    return boards.board(board).part


def accelerator_options(board: str) -> dict:
    """hls4ml's VivadoAccelerator options for ``board``: its part and, on Alveo, its Vitis platform.
    The widths of the board project are set in the files hls4ml writes (``overlay.board_widths``):
    its accelerator precision, the knob of its DMA stream widths, also types its own C-simulation
    wrapper, which hls4ml 1.3.0 writes as invalid C++ for any type but float and double."""
    platform = boards.board(board).platform
    return {"board": board, "part": board_part(board)} | ({"platform": platform} if platform else {})


DENSE_CLASSES = ("Dense", "QDense")


def stock_dense_parallelism(model, config: dict, backend: str, reuse_factor, echo, to_hls=None) -> None:
    """Each stock dense layer's own strategy and reuse factor in ``config`` (keyed by ``to_hls[name]``,
    the layer's C++ identifier; its name when None), printed with ``echo``.

    ``reuse_factor`` None: ``n_in`` (one multiplier per output, hls4ml's Resource strategy), so a
    256 -> 11 head takes 11 multipliers, not 2,816; 1: fully parallel (Latency strategy); any
    other value: the closest one hls4ml accepts for the layer's shape.
    """
    fpga = hls4ml.backends.get_backend(backend)
    for layer in model.layers:
        key = layer.name if to_hls is None else to_hls[layer.name]
        if type(layer).__name__ not in DENSE_CLASSES or key not in config["LayerName"]:
            continue
        n_in, n_out = int(layer.input_shape[-1]), int(layer.units)
        valid = fpga.get_valid_reuse_factors(n_in, n_out)
        chosen = fpga.get_closest_reuse_factor(valid, n_in if reuse_factor is None else int(reuse_factor))
        strategy = "Latency" if chosen == 1 else "Resource"
        config["LayerName"][key].update(ReuseFactor=chosen, Strategy=strategy)
        multipliers = -(-n_in * n_out // chosen)
        echo(
            f"[convert] layer '{layer.name}' ({n_in} -> {n_out}): {strategy} strategy, reuse factor {chosen} "
            f"({multipliers} multipliers)"
        )
