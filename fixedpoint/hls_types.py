"""``FixedType`` <-> hls4ml's ``FixedPrecisionType``: the one conversion each way.

Imports hls4ml, so only the conversion and overlay stages use it (``fixedpoint`` itself stays
NumPy-only for the board).
"""

from __future__ import annotations

from hls4ml.model.types import FixedPrecisionType, RoundingMode, SaturationMode

from fixedpoint import FixedType


def to_hls4ml(ftype: FixedType) -> FixedPrecisionType:
    """``ap_fixed<W, I, AP_RND_CONV, AP_SAT>`` (``AP_SAT_SYM`` when symmetric), or ``ap_ufixed``."""
    return FixedPrecisionType(
        width=ftype.width,
        integer=ftype.integer,
        signed=ftype.signed,
        rounding_mode=RoundingMode.RND_CONV,
        saturation_mode=SaturationMode.SAT_SYM if ftype.symmetric else SaturationMode.SAT,
    )


def from_hls4ml(precision, rounding_matters: bool = True) -> FixedType:
    """The ``FixedType`` of an hls4ml precision.

    ``FixedType`` rounds half to even and saturates (symmetrically for ``SAT_SYM``). A type that
    values are *rounded into* (``rounding_matters``, e.g. the model input) must have exactly those
    modes, else this raises; a type that is only *read* (an output) may have any modes.
    """
    if not isinstance(precision, FixedPrecisionType):
        raise ValueError(f"{precision} is not a fixed-point type (the flow moves raw fixed-point words)")
    symmetric = precision.saturation_mode == SaturationMode.SAT_SYM
    if rounding_matters:
        modes = (precision.rounding_mode, precision.saturation_mode)
        if precision.rounding_mode != RoundingMode.RND_CONV or not (
            symmetric or precision.saturation_mode == SaturationMode.SAT
        ):
            raise ValueError(
                f"{precision}: rounding/overflow modes {modes} are not AP_RND_CONV with AP_SAT or AP_SAT_SYM, "
                "the only ones the host rounds like the hardware"
            )
    return FixedType(precision.width, precision.integer, signed=precision.signed, symmetric=symmetric)
