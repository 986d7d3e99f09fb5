"""Does the data's range match the range the parameter file was calibrated on? (docs/arithmetic.md 1.3, 2.2)

The golden model and the hardware see ``x_q = rint(clip(x / lambda_0, lo, 1) * u)`` (lo = -1 for
signed input, else 0), where lambda_0 is the calibration data's largest |x| and "signed" says whether
it had negative values. Data in another range is quantised without complaint but means nothing:
0..1 images on a 0..255 calibration reach at most one input level, 0..255 images on a 0..1 calibration
saturate, negative values on an unsigned calibration clip to 0. :func:`check_input_range` compares the
data's min and max with lambda_0 and the signedness, for ``ecc-hw evaluate`` and any bench (verify) that
feeds image data to a parameter file:

- an error (``UserError``: one line, exit status 2) when the data's largest |x| is ``SCALE_ERROR``
  (32) or more times below or above lambda_0. That is a different unit (0..1 against 0..255 is 255x,
  0..1 against int8 is 128x), not a different sample of the same data, so every result would be
  meaningless; nothing is run.
- a warning (one line each, for the caller to print on stderr) when that factor is ``SCALE_WARNING``
  (4) or more, when negative values of unsigned input would quantise below zero (they clip to 0),
  and when signed input meets data with no negative value (half the input range unused: was the
  calibration data signed by mistake?). These can be deliberate (an ablation, a darker test set).

:func:`calibration_warnings` looks at the calibration data at convert time. The ONNX model does not
record the input normalisation it was trained with (normalisation ops are not part of the supported
graph), so the only sign of a wrong calibration range the converter has is the data itself: an
integer-typed signed x (int8, int16, ...) with negative values. Images are stored as uint8 0..255 or
as float (0..1, or standardised, which is signed); signed integers with negatives are typically
uint8 pixels read as int8, or pixels shifted to -128..127 for a model that was trained on 0..1 or
0..255. It is a warning, since the calibration then makes the input signed and lambda_0 about 128.
"""
from __future__ import annotations

import numpy as np

from .errors import UserError

SCALE_WARNING = 4.0   # data peak |x| this many times below or above lambda_0: a warning
SCALE_ERROR = 32.0    # ... this many times: an error (a different unit, not a different sample)


def calibrated_range(lambda_0: float, signed: bool) -> str:
    """The input range a parameter file quantises without clipping, as text: ``0..255 (unsigned input)``."""
    return f"{-lambda_0:g}..{lambda_0:g} (signed input)" if signed else f"0..{lambda_0:g} (unsigned input)"


def _scale_text(ratio: float) -> str:
    """``ratio`` (data peak / lambda_0) as a factor below or above: ``1/255 of`` or ``255x``."""
    return f"1/{1 / ratio:.3g} of" if ratio < 1 else f"{ratio:.3g}x"


def check_input_range(params, x: np.ndarray, source: str) -> list[str]:
    """The warnings (one line each, naming ``source``) for image data ``x`` (N, C, H, W) fed to the image-input
    parameter file ``params`` (``NetworkParams`` or ``GraphParams``); a UserError naming ``source`` and both ranges
    when the data's scale is certainly not the calibration's (see the module docstring)."""
    lambda_0, signed, full_scale = params.input_lambda, params.input_signed, params.input_full_scale
    low, high = float(np.min(x)), float(np.max(x))
    peak = max(abs(low), abs(high))
    ranges = f"x spans {low:g}..{high:g}, the parameters were calibrated for {calibrated_range(lambda_0, signed)}"
    ratio = peak / lambda_0
    if ratio == 0:
        raise UserError(f"{source}: {ranges}, and every value of x is 0; expected x in the calibration's range")
    scale = max(ratio, 1 / ratio)
    if scale >= SCALE_ERROR:
        raise UserError(f"{source}: {ranges}: its largest |x| is {_scale_text(ratio)} lambda_0; rescale x to "
                        "the calibration's range, or convert again with calibration data in x's range")
    warnings = []
    if scale >= SCALE_WARNING:
        effect = ("values above lambda_0 saturate" if ratio > 1
                  else f"x reaches input level {int(np.rint(ratio * full_scale))} of {full_scale}")
        warnings.append(f"{source}: {ranges}: its largest |x| is {_scale_text(ratio)} lambda_0 ({effect})")
    if not signed and low / lambda_0 * full_scale <= -0.5:
        warnings.append(f"{source}: {ranges}: its negative values clip to 0 (was x normalised differently?)")
    if signed and low >= 0:
        warnings.append(f"{source}: {ranges}, but x has no negative values: half the input range is unused "
                        "(was the calibration data signed by mistake, e.g. uint8 pixels read as int8?)")
    return warnings


def calibration_warnings(x: np.ndarray, source: str) -> list[str]:
    """The warnings (one line each, naming ``source``) for calibration data ``x`` (N, C, H, W): one when x has
    a signed integer dtype and negative values (see the module docstring)."""
    if not np.issubdtype(x.dtype, np.signedinteger) or x.size == 0 or np.min(x) >= 0:
        return []
    return [f"{source}: x is {x.dtype} with negative values ({np.min(x)}..{np.max(x)}), so the parameters take "
            "signed input with lambda_0 = max |x|; if x holds pixels (uint8 read as a signed type, or shifted from "
            "0..255), pass x in the range the model was trained on (uint8 0..255, or float 0..1)"]
