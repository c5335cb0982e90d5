"""Fan tags (issue 18): sub-lists a fan joins by texting a keyword (`DENVER`), by a flow's
`tag:` step, by an agent in the inbox, or on their profile (`tags`). Segments select by them (`tags`, `any_tags`,
`not_tags`), the `tagged` trigger starts timed flows on them. The rule for a tag's name; the
rows live in `fan_tags` (bot.storage.tag_store), mirrored on the profile as `fan.tags`.
"""

from __future__ import annotations

import re

MAX_TAG = 32  # the inbox's limit since tags began; fan_tags.tag holds 64
SOURCES = ("keyword", "flow", "agent", "profile", "import", "api")
_TAG = re.compile(r"[a-z0-9][a-z0-9_-]*")


def normalise_tag(value: object) -> str:
    """`Denver ` -> `denver`; ValueError for anything but 1-32 letters, digits, '-' or '_'."""
    tag = str(value).strip().lower() if isinstance(value, str | int) else ""
    if not tag or len(tag) > MAX_TAG or not _TAG.fullmatch(tag):
        raise ValueError(
            f"a tag is 1-{MAX_TAG} letters, digits, '-' or '_' (lower case), got {value!r}"
        )
    return tag
