"""SMS encoding and segment count (GSM-7 or UCS-2), for cost reporting on the outbox path.

Pure: the gateway records these per sent message; the local Twilio server answers with them.
"""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38 basic character set and its extension table (extension chars cost two septets).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True, slots=True)
class Segments:
    encoding: str  # "GSM-7" | "UCS-2"
    count: int


def count_segments(body: str) -> Segments:
    """How many SMS segments `body` costs: 160/153 septets in GSM-7, 70/67 UTF-16 units in UCS-2."""
    septets = 0
    for ch in body:
        if ch in _GSM_BASIC:
            septets += 1
        elif ch in _GSM_EXTENDED:
            septets += 2
        else:
            return Segments("UCS-2", _ucs2_segments(body))
    if septets <= 160:
        return Segments("GSM-7", 1)
    return Segments("GSM-7", -(-septets // 153))


def _ucs2_segments(body: str) -> int:
    # Emoji outside the BMP take two UTF-16 code units, as on the handset.
    units = len(body.encode("utf-16-le")) // 2
    if units <= 70:
        return 1
    return -(-units // 67)
