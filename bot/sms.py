"""SMS segments and encoding (GSM-7 or UCS-2): what a text costs, the one place that knows.

Used by content validation (long responses), the inbox's counter, broadcast cost previews, the
gateway (recorded per sent message) and the local Twilio server. Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# GSM 03.38 basic character set (one septet each) and its extension table (escape + char).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True, slots=True)
class Segments:
    encoding: str  # "GSM-7" | "UCS-2"
    count: int


def count_segments(text: str) -> Segments:
    """GSM-7: 160 septets in one segment, else 153 per segment; UCS-2: 70, else 67 units."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        septets = [2 if c in GSM7_EXTENSION else 1 for c in text]
        return Segments("GSM-7", _count(septets, single=160, multi=153))
    # UTF-16 code units: characters outside the BMP (most emoji) take two and are not split.
    units = [2 if ord(c) > 0xFFFF else 1 for c in text]
    return Segments("UCS-2", _count(units, single=70, multi=67))


def sms_segments(text: str) -> tuple[int, str]:
    """(count, encoding): the tuple form content validation reports."""
    s = count_segments(text)
    return s.count, s.encoding


def _count(sizes: list[int], *, single: int, multi: int) -> int:
    total = sum(sizes)
    if total <= single:
        return 1 if total else 0
    segments, used = 1, 0
    for size in sizes:  # an escape pair or surrogate pair never straddles two segments
        if used + size > multi:
            segments, used = segments + 1, 0
        used += size
    return max(segments, math.ceil(total / multi))
