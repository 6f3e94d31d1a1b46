"""QR codes as inline SVG, made on the server (segno): no image requests, no script needed."""

from __future__ import annotations

import segno


def qr_svg(text: str, *, label: str) -> str:
    """An ``<svg>`` of ``text`` that scales with its box (CSS sets the size). Error correction
    M: a phone screen at a till is sharp, and a smaller code scans from further away."""
    code = segno.make(text, error="m", micro=False)
    svg: str = code.svg_inline(
        scale=4, border=2, omitsize=True, svgclass="qr-code", title=label, dark="#000", light="#fff"
    )
    return svg
