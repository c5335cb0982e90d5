"""What a text is about: the texts themselves, or something else (pure).

The phrase model reads how a text is phrased; this reads what it is about. A decision by model
that speaks for the line about its texts needs both: the "Reply STOP to stop all texts?" ask
only for a text about the texts (messages, texts, this number, the list, the subscription,
being contacted), HELP only for help with the texts ("what is this number", "who is this"),
START only for joining them ("put me back on the list"). A question about the star's content
("what songs will she play", "whats the release date again") or a complaint about something
else ("the guards were so rude to me") is none of these, however it is phrased.
"""

from __future__ import annotations

import re

from bot.compliance.phrases import prepare

# nouns and phrases that name the texts, the line or the subscription, in the line's languages
_TEXTS = (
    r"texts?|txts?|texting|txting|messages?|msgs?|messaging|sms|notifications?|notifs?|alerts?"
    r"|this number|this #|this line|this (thing|service|bot|account)"
    r"|(the|your|ur|this|ya|mailing|text|sms|contact) list|subscri\w*|unsub\w*|opt\w* (in|out)"
    r"|contact(ed|ing)? me|hear(ing)? from (you|u|this)|sign(ed)? (me )?up|signup"
    r"|spam\w*|mensajes?|textos?|numero|lista|suscri\w*|desuscri\w*|baja|messaggi|mensage(m|ns)"
    r"|liste|abonn\w*|desabonn\w*|iscri\w*|disiscri\w*|inscri\w*|desinscri\w*|contact\w*"
    r"|escrib\w*|ecri\w*|scriv\w*|escrev\w*|mand\w* (sms|mensage\w*)"
    r"|nachricht\w*|nummer|kontakt\w*|schreib\w*|schick\w*|abmeld\w*|abbestell\w*|verteiler"
)
# "these" / "them" as what the fan receives: "i'd rather not get these", "make them stop"
_THESE = (
    r"(get|getting|receive|receiving|recieve|want|need|sending|send|of|with|from|stop|end|"
    r"all|more|any) (all )?(these|those|them|this stuff|em)\b"
)
# the same in the other languages a line is texted in: receiving, bothering, deleting, leaving
# alone, "nothing more", and stop said to the sender (parar, arrêter, smettere, basta)
_OTHER_LANGUAGES = (
    r"recib\w*|recev\w*|ricev\w*|receb\w*|molest\w*|derang\w*|disturb\w*|incomod\w*|borr\w*"
    r"|elimin\w*|supprim\w*|apag\w*|tranquil\w*|in pace|em paz|en paz|saber nada|plus rien"
    r"|nada mas|mas nada|niente (piu|altro)|mais nada|no mas|paren|parem|parar|arret\w*|smett\w*"
    r"|fermat\w*|dejen|deja de|deixem|lasci\w*|laiss\w*"
    r"|mand(e|en|es|em|ar|arme|ame|enme|ate|atemi|are)"  # send (es, it, pt): "ya no me manden nada"
)
# "stop" or "remove" said to the sender, alone at the end: "honestly please just stop"
_TO_US = r"(^|[^\w' ]\s*|\b(just|please|pls|plz|now|said|so|you|u|to) )(stop|remove)( it| me| now| please| pls)*\W*$"
ABOUT_TEXTS = re.compile(
    rf"\b({_TEXTS}|{_OTHER_LANGUAGES}|my (phone )?number|envi\w*)\b|\b{_THESE}|{_TO_US}",
    re.IGNORECASE,
)
# a question about who is writing: the carriers' HELP ("who is this", "what is this number")
_WHO = re.compile(
    r"^(\W*(hi|hey|hello|um+|uh+|sorry|ok|so)\W+)*"
    r"(who|what)( the \w+)?('?s| is| r| are|s)? (this|these|that|u|you|texting|messaging)\b"
    r"(\W+(number|from|texting me|about|again|lol|pls|please))*\W*$",
    re.IGNORECASE,
)
# joining (again): the START a fan writes in words
_JOIN = re.compile(
    r"\b(back on|add me|put me|sign me|opt me|resubscri\w*|subscri\w*|join (the )?(list|texts)"
    r"|start (sending|texting|messaging)|(texts|messages|updates) again|re-?join)\b",
    re.IGNORECASE,
)


# texts, messages and subscriptions that are not ours: "text dave i'm late", "read me my last
# text message", "do i have any messages", "cancel my subscription to the paper"
ELSEWHERE = re.compile(
    r"^\W*(please |pls |can you |could you |i (want|need) you to )?(text|txt|message|msg|sms) "
    r"(?!(me|us|this|these|anymore|again|pls|please|stop)\b)[a-z]+"
    r"|\bread (me )?(out )?(my|the|a|an|last|new|latest|any|that|this|his|her|their|\w+'s)\b"
    r"[\w' ]*\b(texts?|messages?|msgs?|emails?)\b"
    r"|\b(do i have|are there|any|check( my)?) (any )?(new |unread )?(voicemail )?(texts?|messages?)\b"
    r"|\bvoicemail"
    r"|\b(subscription|membership|subscribed|subscribe) (to|for|with) (?!(your|ur|these|this|the "
    r"(texts|list|messages|alerts)|nova|her|him|them)\b)",
    re.IGNORECASE,
)


# a fan describing the texts they get ("i get a lot of texts from this number", "me llegan
# muchos mensajes"): about the texts, but no request; at most the one "Reply STOP?" ask
_RECEIVING = re.compile(
    r"\b((i|we|im|i'm|i am|ive|i've|i have|i been|i keep|i always|i still)( \w+){0,2} "
    r"(get|getting|got|gotten|receive|receiving|recieve|recieving|received)"
    r"|(these|your|ur|the|ya|you guys'?) (texts|messages|msgs|txts) (keep|always|never|are|were"
    r"|make|come|came|get)"
    r"|you (guys )?(text|send|message|msg)( me| us)? (a lot|alot|so much|too much|every|all the)"
    r"|me llega\w*|recib(o|imos)|he recibido|me (mandan|envian|escriben)"
    r"|(je|on) recoi\w*|j'ai recu|vous m'envoyez|tu m'envoies|ricev(o|iamo)|ho ricevuto"
    r"|mi (arrivano|mandate|scrivete)|receb(o|emos|i)|me (mandam|enviam)|chegam"
    r"|ich (bekomme|kriege|erhalte)|ihr (schickt|schreibt) mir)\b",
)
_REQUEST = re.compile(
    r"\b(stop\w*|stp|unsub\w*|remov\w*|delet\w*|opt|please|pls|plz|want|wanna|wish|like to"
    r"|would like|need|no more|don'?t|dont|do not"
    r"|take|leave|enough|quit|cancel|end|out|block|delete|off|can (you|u|i)|could (you|u)"
    r"|how (do|can) i|rather|sick of|tired of|annoying|spam\w*|why|who"
    r"|basta|dej\w*|paren|parem|pare|por favor|porfa|arret\w*|svp|merci de|smett\w*|favore"
    r"|chega|bitte|auf|mehr|plus|piu|mais|no quiero|ne veux|non voglio|nao quero|baja|desuscri\w*"
    r"|saca\w*|quit\w*|borr\w*|tir\w*|retir\w*|molest\w*|harcel\w*|nerv\w*|demasiad\w*|trop"
    r"|troppi|demais|zu viele)\b",
)


def observation(text: str) -> bool:
    """The text tells what the fan receives and asks nothing about it."""
    prepared = prepare(text)
    return _RECEIVING.search(prepared) is not None and _REQUEST.search(prepared) is None


def about_the_texts(text: str) -> bool:
    """The text speaks of the texts, the number, the list or being contacted (ours, not a
    message to someone else or a subscription to something else)."""
    prepared = prepare(text)
    if ELSEWHERE.search(prepared):
        return False
    return ABOUT_TEXTS.search(prepared) is not None or _WHO.search(prepared) is not None


def asks_who(text: str) -> bool:
    """ "who is this", "what is this number": the carriers' HELP, in words."""
    prepared = prepare(text)
    return _WHO.search(prepared) is not None or (
        re.search(r"\b(this|ur|your) (number|#)\b", prepared) is not None
        and re.search(r"\b(real|personal|phone number for|actual)\b", prepared) is None
    )


def about_joining(text: str) -> bool:
    """The text asks to join the texts (again)."""
    prepared = prepare(text)
    return (
        _JOIN.search(prepared) is not None
        and about_the_texts(prepared)
        or bool(re.search(r"\b(back on|put me back|add me back|resubscri\w*|re-?join)\b", prepared))
    )
