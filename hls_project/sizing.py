"""How much hardware a map needs: exact sum types, multipliers per reuse factor, the parallelism
of a map's reads, and the products of the state update (shared by every family's plugin and the
estimate)."""

from __future__ import annotations

from fixedpoint import FixedType, exact_sum_type, magnitude
from hls_project.reference import LSTMCellActivations, join_type
from models.quantization import LSTMTypes


def exact_cpp(ftype: FixedType) -> str:
    """An exact accumulator's C++ type: no rounding or saturation logic, it never needs any."""
    return f"ap_fixed<{ftype.width},{ftype.integer}>"


def product_sum_type(terms: int, in_type: FixedType, weight_type: FixedType) -> FixedType:
    """The exact type of a sum of ``terms`` products ``in * weight``."""
    return exact_sum_type(terms * magnitude(in_type) * magnitude(weight_type), in_type.frac + weight_type.frac)


STATE_PRODUCTS = 3  # per unit and frame in nnet::lstm_cell_step: f * c, i * g, o * tanh(c)
PWL_PRODUCTS = 5  # and with piecewise-linear activations, one slope product per i, f, g, o, tanh(c)


def multiplier_limit(products: int, reuse_factor: int) -> int:
    """Multipliers of a loop pipelined at II ``reuse_factor`` with ``products`` per iteration
    (the ``ALLOCATION`` limit every kernel config carries as ``multiplier_limit``)."""
    return -(-int(products) // max(1, int(reuse_factor)))


def smallest_divisor_reaching(size: int, need: int) -> int:
    """The smallest divisor of ``size`` that is at least ``need`` (``size`` when ``need`` exceeds it):
    a kernel's parallelism, a divisor so that its banks line up with the work."""
    return min(d for d in range(min(max(1, need), size), size + 1) if size % d == 0)


def recurrent_block(n_state: int, reuse_factor: int) -> int:
    """Terms of ``h @ U`` read per cycle: the smallest divisor of ``n_state`` that reaches II
    ``reuse_factor`` (a divisor, so that cyclic banks of ``h`` and of gate-major ``U`` line up)."""
    return smallest_divisor_reaching(n_state, multiplier_limit(n_state, reuse_factor))


def state_products(activations: LSTMCellActivations) -> int:
    """Products per unit in the state-update loop (its ``ALLOCATION`` limit's numerator)."""
    return STATE_PRODUCTS + (PWL_PRODUCTS if activations.piecewise_linear else 0)


def map_input_type(types: LSTMTypes, fused_recurrent: bool) -> FixedType:
    """The type of the input map's input: the frame, or ``[x; h]`` for fused families."""
    return join_type(types) if fused_recurrent else types.input
