"""Parsing of user-facing scalar settings shared by several commands."""

from fractions import Fraction

from csibench.errors import UsageError

CSI_SIZE = 2048  # 2 (real/imag) × Nt 32 × Nc 32 real values per CSI matrix


def parse_cr(text: str, full_size: int = CSI_SIZE) -> Fraction:
    """Parse a compression ratio such as ``1/16`` or ``0.0625`` whose codeword length full_size·CR is whole."""
    valid = f"a fraction like 1/16 or a decimal like 0.0625, in (0, 1], with {full_size}·CR a whole number"
    try:
        cr = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"invalid compression ratio {text!r}: expected {valid}") from None
    if not 0 < cr <= 1:
        raise UsageError(f"invalid compression ratio {text!r}: must lie in (0, 1]; expected {valid}")
    if (cr * full_size).denominator != 1:
        raise UsageError(f"invalid compression ratio {text!r}: {full_size}·CR = {float(cr * full_size):g} is not whole; expected {valid}")
    return cr


def format_cr(cr: Fraction) -> str:
    return f"{cr.numerator}/{cr.denominator}"
