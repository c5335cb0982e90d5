"""What `fanline import rasa` did with each part of a Rasa project: converted, approximated, left out."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ImportReport:
    converted: list[str] = field(default_factory=list)
    approximated: list[str] = field(default_factory=list)  # works, but not exactly as in Rasa
    left_out: list[str] = field(default_factory=list)  # with file:line and what to do instead

    @property
    def by_hand(self) -> list[str]:
        """What the user must still do: what was left out, less what SMS does not need (other
        channels, Rasa's other endpoints: listed so nothing is dropped silently)."""
        informational = ("credentials.yml: channel", "endpoints.yml:")
        items = dict.fromkeys(self.left_out)
        return [i for i in items if not i.startswith(informational)]

    def format(self) -> str:
        lines = []
        for title, items in (
            ("converted", self.converted),
            ("approximated", self.approximated),
            ("left out", self.left_out),
        ):
            items = list(dict.fromkeys(items))
            lines.append(f"{title} ({len(items)}):")
            lines += [f"  - {item}" for item in items] or ["  (none)"]
        lines.append(f"to do by hand: {len(self.by_hand)}")
        return "\n".join(lines)
