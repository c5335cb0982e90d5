"""Link opt-in: a personal, signed, expiring signup link and the mobile page it opens.

Where it sits: a first-time texter's reply carries `{signup_link}` (the pipeline asks
`SignupLinks(settings)(contact_id)`); the fan opens `GET /join/<token>`, fills in first name,
birthday, ZIP or country, optional email, passes the age gate and ticks the consent box, and
`POST /join/<token>` subscribes them in one transaction: profile, consent ledger row (method
`web_form`, the exact text shown, IP, user agent) and the welcome text in the outbox
(optionally with a vCard as MMS, served at `/join/card.vcf`).

The token carries only the contact id and when it was issued, signed with the secret key
(itsdangerous); no phone number is ever in a URL. A link subscribes once: using it spends it
and every older link of the fan (a used or superseded link shows a friendly page and writes
nothing), and a fan who texted STOP after the link was issued is not re-subscribed by it. They
text START to rejoin: STOP came from the handset, and a link (which can be forwarded, or sit in
a shared phone's history) is no proof that the handset's owner has changed their mind. POSTs are CSRF-safe: the unguessable token, plus a signed form nonce
that must match a SameSite=Strict cookie set with the form. Jinja2 escapes everything.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from random import Random
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, raw

from bot.audience.quiet_hours import zone_for_country, zone_for_zip
from bot.domain import ConsentChange
from bot.errors import HttpError, NotFound
from bot.linkish import linkish  # a first name never goes into our texts as a link
from bot.messages import OutboundSms
from bot.settings import Settings
from bot.storage import Store
from bot.storage.fan_records import FanRecords
from bot.storage.store import SpentLink

TOKEN_SALT = "fanline.signup.link"
NONCE_SALT = "fanline.signup.form"
NONCE_COOKIE = "fanline_join"
LINK_DAYS = 14
FORM_MAX_AGE_S = 2 * 3600
DEFAULT_CONSENT = ("By ticking this box you agree to receive recurring automated marketing "
                   "texts from Nova Vale at the number you texted from. Consent is not a "
                   "condition of purchase. Msg frequency varies. Msg & data rates may apply. "
                   "Reply HELP for help, STOP to cancel.")  # fmt: skip
DEFAULT_WELCOME = ("You're in, {first_name}! Welcome to Nova Vale's fan line. Reply HELP for "
                   "help, STOP to opt out.")  # fmt: skip
COUNTRIES = (
    "US",
    "CA",
    "GB",
    "IE",
    "AU",
    "NZ",
    "DE",
    "FR",
    "ES",
    "IT",
    "NL",
    "SE",
    "MX",
    "BR",
    "JP",
)
SPENT = {
    "used": "This signup link has already been used, so it can't change anything now. "
    "Text us if you need a new one.",
    "opted_out": "You texted STOP after we sent this link, so it no longer signs you up. "
    "To join again, text START to this number.",
}
_ZIP = re.compile(r"^\d{5}(-\d{4})?$")
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$")
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("web")),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


class SignupLinks:
    """`links(contact_id) -> https://.../join/<token>`; `links.contact_id(token)` checks one."""

    def __init__(self, settings: Settings, max_age_days: int = LINK_DAYS) -> None:
        self.base = settings.public_url.rstrip("/")
        self.max_age_s = max_age_days * 86400
        self.serializer = URLSafeTimedSerializer(settings.secret_key, salt=TOKEN_SALT)

    def __call__(self, contact_id: int) -> str:
        issued_ms = time.time_ns() // 1_000_000  # finer than the signature's whole seconds
        return f"{self.base}/join/{self.serializer.dumps([contact_id, issued_ms])}"

    def check(self, token: str) -> tuple[int, datetime]:
        """(contact id, when the link was issued), or NotFound."""
        try:
            value, signed_at = self.serializer.loads(
                token, max_age=self.max_age_s, return_timestamp=True
            )
        except BadSignature:  # also SignatureExpired
            raise NotFound("this signup link is invalid or has expired") from None
        match value:
            case [int(contact_id), int(issued_ms)]:
                return contact_id, datetime.fromtimestamp(issued_ms / 1000, UTC)
            case int(contact_id):  # a link from before links carried their time
                return contact_id, signed_at.replace(tzinfo=signed_at.tzinfo or UTC)
        raise NotFound("this signup link is invalid or has expired")

    def contact_id(self, token: str) -> int:
        return self.check(token)[0]


def signup_link(contact_id: int, settings: Settings) -> str:
    return SignupLinks(settings)(contact_id)


def consent_text(responses: Any) -> str:
    """The exact consent text shown: the domain's `utter_consent_text`, else the default."""
    if responses is not None and "utter_consent_text" in responses:
        return responses.render("utter_consent_text", {}, {}, Random(0)).text
    return DEFAULT_CONSENT


def validate_form(
    form: dict[str, str], today: date, min_age: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """(profile fields, errors by field); pure, so the rules are tested without HTTP."""
    errors: dict[str, str] = {}
    profile: dict[str, Any] = {}
    name = " ".join(form.get("first_name", "").split())
    if not 1 <= len(name) <= 40 or any(not c.isprintable() for c in name) or linkish(name):
        errors["first_name"] = "Please tell us your first name."
    profile["first_name"] = name
    try:
        born = date.fromisoformat(form.get("birthday", ""))
    except ValueError:
        errors["birthday"] = "Please enter your birthday."
    else:
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        if born > today or age > 120:
            errors["birthday"] = "Please check your birthday."
        elif age < min_age:
            errors["birthday"] = f"Sorry, you must be {min_age} or older to join."
        profile["birthday"] = born.isoformat()
    if form.get("age_ok") != "yes":
        errors["age_ok"] = f"Please confirm you are {min_age} or older."
    _place(form, profile, errors)
    email = form.get("email", "").strip()
    if email:
        if not _EMAIL.match(email):
            errors["email"] = "That email address does not look right."
        profile["email"] = email
    if form.get("consent") != "yes":
        errors["consent"] = "Please tick the box to agree to receive texts."
    return profile, errors


def _place(form: dict[str, str], profile: dict[str, Any], errors: dict[str, str]) -> None:
    zip_code = form.get("zip", "").strip()
    country = form.get("country", "").strip().upper() or ("US" if zip_code else "")
    if country not in COUNTRIES:
        errors["country"] = "Please choose your country."
        return
    if country == "US":
        if not _ZIP.match(zip_code):
            errors["zip"] = "Please enter your 5-digit ZIP code."
            return
        profile["zip"] = zip_code[:5]
    profile["country"] = country
    zone = zone_for_zip(profile.get("zip")) or zone_for_country(country)
    if zone:
        profile["timezone"] = zone  # broadcasts respect the fan's own quiet hours


def vcard(name: str, number: str | None, url: str) -> str:
    def esc(text: str) -> str:
        return re.sub(r"([,;\\])", r"\\\1", text).replace("\n", " ")

    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{esc(name)}", f"N:;{esc(name)};;;"]
    if number:
        lines.append(f"TEL;TYPE=CELL:{esc(number)}")
    lines += [f"URL:{esc(url)}", "END:VCARD"]
    return "\r\n".join(lines) + "\r\n"


def signup_blueprint(
    settings: Settings,
    store: Callable[[], Store],
    responses: Callable[[], Any] = lambda: None,
    *,
    on_queued: Callable[[], None] = lambda: None,
    card_name: str | None = None,
    card_number: str | None = None,
    min_age: int = 13,
) -> Blueprint:
    """The signup page. `store`/`responses` are callables: the app builds them at start-up."""
    bp = Blueprint("signup")
    links = SignupLinks(settings)
    nonces = URLSafeTimedSerializer(settings.secret_key, salt=NONCE_SALT)
    secure = settings.public_url.startswith("https://")
    card_url = f"{settings.public_url.rstrip('/')}/join/card.vcf"

    def page(request: Request, contact_id: int, form: dict[str, str], errors: dict[str, str],
             status: int = 200) -> HTTPResponse:  # fmt: skip
        secret = secrets.token_urlsafe(16)
        nonce = nonces.dumps({"c": contact_id, "n": secret})
        body = _TEMPLATES.get_template("signup.html").render(
            form=form, errors=errors, nonce=nonce, consent=consent_text(responses()),
            countries=COUNTRIES, min_age=min_age, action=request.path,
        )  # fmt: skip
        answer = html(body, status=status, headers=_NO_STORE)
        answer.add_cookie(NONCE_COOKIE, secret, path="/join", httponly=True, samesite="Strict",
                          secure=secure, max_age=FORM_MAX_AGE_S)  # fmt: skip
        return answer

    @bp.exception(HttpError)
    async def friendly(request: Request, exc: HttpError) -> HTTPResponse:
        return _message(str(exc), exc.status)  # our own texts only: never echoes the request

    @bp.get("/join/card.vcf")
    async def card(request: Request) -> HTTPResponse:
        if not card_name:
            raise NotFound("no contact card")
        return raw(vcard(card_name, card_number, settings.public_url), content_type="text/vcard")

    @bp.exception(SpentLink)
    async def spent(request: Request, exc: SpentLink) -> HTTPResponse:
        return _message(SPENT[exc.reason], 409)

    @bp.get("/join/<token:str>")
    async def join_form(request: Request, token: str) -> HTTPResponse:
        contact_id, issued_at = links.check(token)
        await FanRecords(store()).contact(contact_id)  # an erased fan's link is dead
        state = await store().signup_link_state(contact_id, issued_at)
        if state != "ok":
            raise SpentLink(state)
        return page(request, contact_id, {}, {})

    @bp.post("/join/<token:str>")
    async def join(request: Request, token: str) -> HTTPResponse:
        contact_id, issued_at = links.check(token)
        form = {k: str(v[0]) for k, v in request.form.items()}
        if not _nonce_ok(
            nonces, form.get("nonce", ""), request.cookies.get(NONCE_COOKIE), contact_id
        ):
            return _message(
                "This form has expired. Please open the link from your texts again.", 403
            )
        profile, errors = validate_form(form, date.today(), min_age)
        if errors:
            return page(request, contact_id, form, errors, status=422)
        records = FanRecords(store())
        contact = await records.contact(contact_id)
        if contact.subscription == "subscribed":
            await records.subscribe_from_web(contact_id, profile, None, None, None, [], issued_at)
            return _message(f"You're already on the list, {profile['first_name']}. See you soon!")
        text_shown = consent_text(responses())
        action = "resubscribe" if contact.subscription == "unsubscribed" else "opt_in"
        welcome = _welcome(responses(), contact.phone, profile, card_url if card_name else None)
        await records.subscribe_from_web(
            contact_id, profile, ConsentChange(action, "web_form", text_shown),
            request.remote_addr or request.ip, request.headers.get("user-agent", "")[:500], [welcome],
            issued_at,
        )  # fmt: skip
        on_queued()
        return _message(f"You're in, {profile['first_name']}! Check your texts.")

    return bp


_NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
             "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'"}  # fmt: skip


def _nonce_ok(
    nonces: URLSafeTimedSerializer, nonce: str, cookie: str | None, contact_id: int
) -> bool:
    try:
        data = nonces.loads(nonce, max_age=FORM_MAX_AGE_S)
    except BadSignature:
        return False
    return (
        isinstance(data, dict)
        and data.get("c") == contact_id
        and cookie is not None
        and secrets.compare_digest(str(data.get("n", "")), cookie)
    )


def _welcome(responses: Any, phone: str, profile: dict[str, Any], card: str | None) -> OutboundSms:
    if responses is not None and "utter_welcome_subscribed" in responses:
        rendered = responses.render("utter_welcome_subscribed", {}, profile, Random())
        text, media = rendered.text, rendered.media_urls
    else:
        text, media = DEFAULT_WELCOME.replace("{first_name}", profile["first_name"]), ()
    return OutboundSms(to=phone, body=text, media_urls=(*media, card) if card else media,
                       kind="system")  # fmt: skip


def _message(text: str, status: int = 200) -> HTTPResponse:
    body = _TEMPLATES.get_template("signup_done.html").render(message=text)
    return html(body, status=status, headers=_NO_STORE)
