"""Fan-provided values a phone would show as a link, kept out of the texts we send.

Where it sits: at every place a fan's own fields are filled into a text (responses in
`bot.flows.responses`, `Contact.fan_fields`, broadcast and topic-reply templates, and their SQL in
`bot.storage.broadcast_store`). A first name comes from a web form anyone can fill in for any
number, or from a text; sent from the star's number, "Hi http://evil.example/x" is phishing with
our sender's trust. Such a value renders as missing (the placeholder's `{name|default}`), so the
text still reads well. Engine-made links (`{signup_link}`) are not fan fields and are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# a scheme, www., a path or an address, a backslash, or a dot followed by a domain-like word;
# written so Python's re and PostgreSQL's regular expressions read it alike (SQL templates)
PATTERN = r"://|www\.|[/@\\]|\.[A-Za-z]{2,}"
_LINKISH = re.compile(PATTERN, re.IGNORECASE)
# fields of their own validated type ("America/New_York", an email) and engine-made links; the
# rest of a profile is free text the fan (or a form filled in for them) wrote
EXEMPT = frozenset({"email", "birthday", "zip", "timezone", "signup_link"})
# the free-text profile fields a flow's slot may hold too (the pipeline saves them onto it)
PROFILE_SLOTS = frozenset({"first_name", "country"})


def linkish(value: Any) -> bool:
    return isinstance(value, str) and _LINKISH.search(value) is not None


def shown(name: str, value: Any) -> Any:
    """The value as it may appear in a text: None for a link-like fan field."""
    return None if name not in EXEMPT and linkish(value) else value


def shown_profile(profile: Mapping[str, Any]) -> dict[str, Any]:
    """A profile with its link-like text fields left out."""
    return {k: v for k, v in profile.items() if shown(k, v) is not None or v is None}
