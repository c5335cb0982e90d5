"""Tracked links (pure): the `fanline.links:` setting, short codes, rewriting a text's URLs, and
telling a person's click from a link preview's or a bot's fetch.

Where it sits: when a broadcast's texts are written (`bot.storage.broadcast_store`) each
http(s) URL of the template becomes `<domain>/l/<code>`, one random code per recipient and URL
(`bot.storage.link_store`); `bot.audience.redirect` serves `/l/<code>` (302 to the stored URL
only) and records the click. A code is random base62, so it carries no phone number, no
contact id, nothing guessable.

    fanline:
      links:
        domain: https://nova.fm            # default: the public URL
        track_responses: false             # timed flows' texts get short links too
        utm: {source: sms, medium: fanline, campaign: "{broadcast}"}
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.errors import ConfigError, Location

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CODE_LENGTH = 10  # 62^10 ~ 8e17: a guessed code finds nothing
CODE = re.compile(r"^[0-9A-Za-z]{8,16}$")
# an absolute http(s) URL; trailing sentence punctuation is not part of it ("see x.com/a.")
URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
UTM_KEYS = ("source", "medium", "campaign", "term", "content")
DEFAULT_UTM = {"source": "sms", "medium": "fanline", "campaign": "{broadcast}"}

# link-preview fetchers (they fetch when a link is shown, not when it is tapped) and crawlers or
# tools; lower-case substrings of the User-Agent. iMessage's preview sends a Facebook-like agent.
PREVIEW_AGENTS = ("facebookexternalhit", "facebot", "slackbot", "twitterbot", "whatsapp",
                  "linkpreview", "telegrambot", "discordbot", "skypeuripreview", "linkedinbot",
                  "pinterest", "redditbot", "embedly", "iframely", "vkshare", "google-pagerenderer",
                  "snapchat", "signal")  # fmt: skip
BOT_AGENTS = ("bot", "crawler", "spider", "curl/", "wget/", "python-requests", "python-urllib",
              "httpx", "aiohttp", "go-http-client", "java/", "okhttp", "libwww", "headless",
              "scrapy", "httpclient", "axios", "node-fetch", "postman", "preview",
              "lighthouse", "monitor", "scanner", "urlscan", "proofpoint", "mimecast",
              "barracuda")  # fmt: skip


@dataclass(frozen=True, slots=True)
class LinkSettings:
    domain: str | None = None  # None: Settings.public_url
    utm: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_UTM))
    track_responses: bool = False

    def base(self, public_url: str) -> str:
        return (self.domain or public_url).rstrip("/") + "/l/"


def link_settings(value: Any, path: str, line: int | None = None) -> LinkSettings:
    """`fanline.links:` (None: the defaults); ConfigError names file, line and key."""
    if value is None:
        return LinkSettings()
    if not isinstance(value, dict):
        raise ConfigError("expected a mapping", Location(path, line, "fanline.links"))
    lines = getattr(value, "key_lines", {})
    out: dict[str, Any] = {}
    for key, setting in value.items():
        where = Location(path, lines.get(key, line), f"fanline.links.{key}")
        if key == "domain":
            out["domain"] = _domain(setting, where)
        elif key == "track_responses":
            if not isinstance(setting, bool):
                raise ConfigError(f"must be true or false, got {setting!r}", where)
            out[key] = setting
        elif key == "utm":
            out["utm"] = _utm(setting, where)
        else:
            raise ConfigError("unknown setting: use domain, utm, track_responses", where)
    return LinkSettings(**out)


def _domain(value: Any, where: Location) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("expected a URL such as https://nova.fm", where)
    text = value.strip().rstrip("/")
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"expected a URL such as https://nova.fm, got {value!r}", where)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _utm(value: Any, where: Location) -> dict[str, str]:
    if value is False or value == {}:
        return {}  # no UTM tags at all
    if not isinstance(value, dict):
        raise ConfigError("expected a mapping such as {source: sms, medium: fanline}", where)
    out = {}
    for key, text in value.items():
        if key not in UTM_KEYS:
            raise ConfigError(f"unknown UTM tag {key!r} (known: {', '.join(UTM_KEYS)})", where)
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"utm.{key} must be text", where)
        out[str(key)] = text.strip()
    return out


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def find_urls(text: str) -> list[str]:
    """The distinct http(s) URLs of a text, in order of appearance."""
    seen: dict[str, None] = {}
    for m in URL.finditer(text):
        seen.setdefault(m.group(0).rstrip(_TRAILING), None)
    return [u for u in seen if "://" in u and urlsplit(u).netloc]


def with_utm(url: str, utm: dict[str, str], values: dict[str, str]) -> str:
    """The URL with UTM tags added (`{broadcast}` filled in); tags the URL already has win."""
    if not utm:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    for key, template in utm.items():
        name = f"utm_{key}"
        if name not in present:
            query.append((name, _fill(template, values)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), ""), template)


def rewrite(text: str, urls: list[str], short: Callable[[str], str]) -> str:
    """Each of `urls` in `text` replaced by `short(url)` (longest first: one URL may start
    another)."""
    ordered = sorted(urls, key=len, reverse=True)
    if not ordered:
        return text
    pattern = re.compile("|".join(re.escape(u) for u in ordered))
    return pattern.sub(lambda m: short(m.group(0)), text)


def sample_short(base: str) -> str:
    """A short link of the real length, for previews and segment counts."""
    return base + "x" * CODE_LENGTH


def agent_kind(user_agent: str | None, method: str = "GET") -> str:
    """`human`, `preview` (a link preview fetched it) or `bot`; only humans count as clicks.

    A HEAD request, a missing agent and the agents above are not a person tapping a link. It
    cannot be perfect (a bot may claim to be a phone); it keeps previews, which every
    WhatsApp or Slack share of the link causes, out of click-through.
    """
    ua = (user_agent or "").lower()
    if any(p in ua for p in PREVIEW_AGENTS):
        return "preview"
    if method == "HEAD" or not ua.strip() or any(b in ua for b in BOT_AGENTS):
        return "bot"
    if not ua.startswith("mozilla/") and "dalvik" not in ua and "opera" not in ua:
        return "bot"  # browsers and in-app web views all say Mozilla/5.0
    return "human"
