"""Rules around the phrase model: explicit opt-out wording that always wins, and precision
guards for texts that merely contain "stop" (pure).

An explicit request ("stop texting me", "unsubscribe", "take my number off") is an opt-out
whatever else the text says ("can't stop listening but stop texting me"). A guard ("can't stop
listening", "next stop on the tour", "don't stop the music", "when does the tour stop in
denver") vetoes the phrase model's opt-out when nothing explicit is there.
"""

from __future__ import annotations

import re
import unicodedata

from bot.compliance import language

_TEXTS = r"(texts?|txts?|messages?|msgs?|sms|notifications?|alerts?|mensajes|messaggi|mensagens)"
_SEND = r"(text|txt|message|msg|contact|sms|send|email)(ing|in)?"

EXPLICIT_OPT_OUT = re.compile(
    r"\b("
    rf"(stop|quit|cease|end) {_SEND}(?! (you|u|ya|nova|her|him|them)\b)( me| us| this number)?"
    rf"|(stop|end|cancel|block) (all |the |these |those |your |ur |my )*{_TEXTS}"
    r"|unsubscribe|unsub me|opt[- ]?(me )?out|opting out"
    r"|(remove|delete) (me|my (phone )?number|this number)\b"
    r"|(take|get) (me|my (phone )?number|this number) (off|out of)\b"
    rf"|(do not|dont|don't|never|pls don't|please don't) {_SEND} me"
    rf"|no more {_TEXTS}"
    rf"|(don't|dont|do not|no longer) (want|wish) (to (get|receive) )?(any )?(more )?(of )?(your |these |the |ur )?{_TEXTS}"
    r"|leave me alone"
    r"|(cease|stop|end) (all )?(communications?|contact)\b(?! (with|from) (the|my) )"
    r"|make (them|these|the texts|the messages|these texts|these messages) stop"
    r"|(like|want|wish|need|asked|ask) to be (removed|taken off|unsubscribed|deleted|opted out)"
    r"|(don't|dont|do not) want to hear from (you|u|this number|nova) (again|anymore|any more|ever)"
    r"|(no longer|not) interested in (these|the|your|ur|nova's|any) (updates|texts|messages|alerts)"
    r"|[.!;]\s*no more\W*$"
    r"|(appreciate|prefer|rather|like|want|wish) (to )?(not|no longer) (get|getting|receive|receiving)"
    r" (any )?(more|further) (of )?(these|those|them|texts|messages|msgs)"
    r"|(lose|forget|erase) (my|this) (phone |cell )?(number|#)"
    r"|(taken|removed|deleted|dropped) (off|from|out of) (the |this |your |ur )?(mailing |text |texting |fan )?(list|texts|messages)"
    r"|(stop|quit) sending (them|these|those|em|this stuff|this crap)\b(?! (to|out))"
    r"|(leave|quit|exit) (the|this|your|ur) (fan ?line|text club|texting list|list|texts)\b"
    r"|how (do|can|would) i (get|come) off (this|the|your|ur)\b"
    r"|remove (my |this |the )?(phone |cell )?number\b(?! \d)"
    r"|revoke (my )?consent|withdraw (my )?consent"
    r")\b",
    re.IGNORECASE,
)

# The same explicit wording in the other languages fans of an English line write in, read on
# the text lower-cased with accents folded ("no me escriban más" -> "no me escriban mas"): a
# request to stop sending, to be taken off the list or unsubscribed, "no more messages". Each
# names the texts, the list or sending itself, so a fan's other news ("no puedo dejar de
# escucharla", "la gira para en madrid") never matches; negated ones ("no dejen de mandarme")
# are vetoed as in English.
_SEND_ES = r"(mand|envi|escrib|contact|molest|text|spame)\w*"
_SEND_FR = r"(envoy|ecri|contact|text|harcel|spamm|derang)\w*"
_SEND_IT = r"(mand|invi|scriv|contatt|messaggi|disturb)\w*"
_SEND_PT = r"(mand|envi|escrev|contat|perturb|incomod)\w*"
_MSGS = (
    r"(mensajes?|mensagens?|mensagem|messages?|messaggi|nachrichten|sms|textos?|textes?|"
    r"notific\w*|benachrichtigungen|mitteilungen|alertas?|alertes?|avisos?|werbung|newsletter)"
)
_LIST = r"(la |su |tu |esta |esa |vuestra |votre |ta |cette |la vostra |questa |dessa |desta |da |sua )?(lista|liste|listado)"
OTHER_LANGUAGES_OPT_OUT = re.compile(
    r"\b("
    # es
    rf"(dej\w*|par(en|e|a|ar|es)|basta) de {_SEND_ES}"
    rf"|no (me|nos) (vuelv\w+ a )?{_SEND_ES}( \w+){{0,2}} (mas|nunca|jamas)\b"
    rf"|ya no (me|nos) {_SEND_ES}|no (me|nos) {_SEND_ES}\W*$"
    rf"|no (me |nos )?(sigan|sigas|siga|continuen|continues) (\w+ )?{_SEND_ES}"
    # a delete verb in the imperative with "me", alone or with the list: "borrenme porfa",
    # "toglietemi dalla lista" (not "quitame la duda", "levami una curiosita")
    r"|((borr|elimin|quit|saqu|remuev|desuscrib)(en|a|e|an)(me|nos)"
    r"|(rimuov|togli|cancell|elimin|lev|disiscriv)(e|a)?te?mi"
    r"|toglimi|cancellami|rimuovimi|eliminami|levami|disiscrivimi)"
    r"(?=\W*$|\W*[,.!;]| (de|del|dalla|da|por favor|porfa|per favore|grazie|gracias|ya|subito)\b)"
    r"|me (removam|remova|remove|tirem|tira|tire|apaguem|excluam|descadastrem)"
    r"( da lista| daqui| disso| dessa lista)?\W*($|,|\.|por favor|pfv|obrigad)"
    rf"|no (me )?(vuelv\w+ a) {_SEND_ES}"
    rf"|no (quiero|deseo|quisiera)( (recibir|tener|que me \w+))?( mas)? (mas |sus |estos |tus |los |ningun |nada de )?{_MSGS}"
    r"|no quiero (recibir )?(nada )?mas( nada)?( de (ustedes|ti|esto|nova|este numero))?\W*"
    r"(gracias|por favor|porfa)?\W*$"
    r"|no quiero (recibir )?nada (mas )?de (ustedes|ti|este numero)"
    rf"|no quiero que (me |nos )?(sigan |vuelvan a |sigas )?{_SEND_ES}"
    r"|\bde baja\b|desuscri\w*|desinscrib\w*"
    rf"|cancel\w* (mi |la |mis |los |as |os |minhas |meus |essas |estas |esses |estos |esos )?"
    rf"(suscripcion|subscripcion|{_MSGS})"
    rf"|(dejar|parar|deixar|arreter|smettere|cesser) (de |di |d')(recib|receb|recev|ricev)\w*|(parar|detener) (los |estos |de recibir )?{_MSGS}"
    rf"|no quiero (estar|seguir) en {_LIST}|no quiero recibir mas (informacion|info|nada)"
    rf"|(sac|saqu|quit|borr|elimin|remuev|remov)\w* (me |mi numero |mi telefono |mi celular )?(de|del) {_LIST}"
    r"|(borr|elimin|quit)\w* (mi|este) (numero|telefono|celular)"
    rf"|(salir|salirme|sacarme) de {_LIST}"
    rf"|(basta|basta ya|no mas|alto a|detener|ya basta|paren|para)( de| con)? (los |estos |tantos |sus )?{_MSGS}"
    # es, fr, it, pt alike: (no) want to (keep) receiving; want out; to be removed; forget me
    r"|(no|ne|nao|non) (quiero|deseo|veux|voglio|quero|desejo|souhaite|voudrais)"
    r"( pas| plus| mais| piu| seguir| continuar| continuare a| continuer a| continuer de)? "
    r"(recib|recev|ricev|receb)\w*"
    rf"(\W*$| (mas |plus |piu |mais )?(nada|rien|niente|isso|esto|eso|ca|cela|questo|{_MSGS}"
    r"|ces|estos|esses|essas|questi|sus|vos|vostri|seus|suas)\b)"
    r"|(quiero|me quiero|je veux|voglio|quero|me quero) (salir|sortir|uscire|sair)(me)?"
    rf"( de| da| dalla| d'| du)? ?(esto|aqui|ici|qui|daqui|disso|ca|la|questa cosa|{_LIST})"
    rf"|(ne plus|non piu|no mas|ya no|nao mais) (etre|estar|essere|ficar|star) (sur|en|nella|na|in) {_LIST}"
    r"|(voglio|vorrei|quiero|quisiera|quero|queria|gostaria de|je veux|je voudrais) (ser|essere|etre) "
    r"(cancellat|rimoss|tolt|disiscritt|borrad|eliminad|dad. de baja|removid|excluid|descadastrad"
    r"|retire|desinscrit|desabonne|supprime)\w*"
    r"|(?<!ne )(oubliez[- ]moi|m'oublier|m'oubliez|olvidenme|olvidate de mi|dimenticatemi"
    r"|esquecam (meu numero|de mim))"
    rf"|(fini|finis|termine|assez) (les |des |de )?{_MSGS}"
    # fr
    rf"|(arret|cess)\w* (de |d')(m'|me |nous )?{_SEND_FR}"
    rf"|(arret|cess|stop)\w* (les |vos |ces |aux |tous les |des )?{_MSGS}"
    rf"|(ne )?(m'|me |nous ){_SEND_FR}( \w+)? (plus|jamais)\b"
    rf"|ne (plus|jamais) (m'|me |nous )?({_SEND_FR}|recevoir)"
    rf"|(veux|veut|souhaite|voudrais|desire) plus (recevoir |avoir )?(de |des |vos |ces |les |aucun )?({_MSGS}|rien)"
    r"|plus rien recevoir|(veux|souhaite|voudrais|desire) (plus|pas) etre (contacte|derange|sollicite)"
    r"|(no|non|nao|ne) (me |mi |m')?interess\w* (plus |piu |mais |mas )?(de |a |di )?"
    r"(recib|recev|ricev|receb)\w*"
    r"|(parem|paren|arretez|smettetela|smettete) (com|con|avec) (isso|esto|eso|ca|questo|cela)"
    r"|(arret\w*|basta( con)?|chega( de)?|paren( con)?|parem( com)?) (le |lo |o |el |los |de )?spam\w*"
    r"|(me|m') ?(retirer|enlever|supprimer|desinscrire|desabonner|effacer) (de|du|des)\b"
    r"|desabonn\w*|desinscri\w*"
    rf"|(retir|enlev|supprim|effac|sort|vir)\w*[- ](moi|mon numero|mon num|ce numero)\b"
    rf"|(quitter|sortir de) {_LIST}"
    r"|laiss\w*[- ]moi tranquille"
    rf"|^\W*(plus|assez|ca suffit|y en a marre)( de| des| les)? {_MSGS}"
    # it
    rf"|(smett\w*|basta|finitela|piantala) (di |con )?{_SEND_IT}"
    rf"|non (mi |ci )?{_SEND_IT}( \w+){{0,2}} (piu|mai)\b"
    rf"|non voglio (piu )?(ricevere )?(piu )?(i |questi |vostri |altri |nessun )?{_MSGS}"
    rf"|(basta|stop)( con)? (i |questi |coi |ai |con i )?{_MSGS}"
    rf"|(cancell|togli|rimuov|elimin)\w* (il mio numero|dalla {_LIST}|da {_LIST}|il numero)"
    r"|disiscri\w*|annull\w* (la mia |l'|l )?iscrizione"
    r"|lascia\w* (in pace|stare)"
    rf"|non (ricevere|essere (contattat|disturbat)\w*) piu|non voglio (piu )?essere (piu )?(contattat|disturbat)\w*"
    rf"|(uscire|rimoss\w|tolt\w|cancellat\w) (dalla|da questa|dalla vostra) (lista|liste)"
    # pt
    rf"|(par\w*|deix\w*) de (me )?{_SEND_PT}"
    rf"|(nao|n) (me )?{_SEND_PT}( \w+){{0,2}} (mais|nunca)\b"
    rf"|nao quero (mais )?(receber )?(mais )?(essas |estas |esses |estes |suas |seus |as |os |nenhuma )?({_MSGS}|nada)"
    r"|nao quero mais ser contatad\w*"
    rf"|(suficiente|bastante|assez|abbastanza|genug)( de| des| con| di| com| mit)?( los| les| i| estos| ces| essas| den| deinen| euren)? {_MSGS}"
    rf"|(chega|par\w*) (de|com) (essas |estas |as |tantas |suas )?{_MSGS}"
    rf"|(tir|remov|apag|exclu)\w* (me |meu numero |o meu numero )?(da|dessa|desta|de sua|do) {_LIST}"
    r"|(remov|apag|exclu|delet)\w* (o )?meu (numero|telefone|celular)"
    rf"|sair (da|dessa|desta) {_LIST}|descadastr\w*|cancel\w* (a |minha )?inscricao"
    r"|deix\w* em paz"
    # de
    rf"|keine? (weiteren? |mehr )?{_MSGS}( \w+){{0,2}} mehr"
    rf"|keine {_MSGS} mehr|keine? (weiteren? )?{_MSGS} bitte"
    r"|h(o|oe)r\w* (bitte |endlich |sofort |doch )?auf\b.{0,30}\bzu (schreiben|schicken|senden|texten|kontaktieren|nerven|spammen)"
    r"|(schreib|schick|kontaktier|send|simst)\w*( \w+){0,3} nicht mehr"
    r"|nicht mehr (an)?(schreiben|kontaktieren|anschreiben|schicken|texten|simsen)"
    r"|abmelden|abmeldung|abbestell\w*|austragen|(abo|abonnement) kundigen"
    r"|meld\w* (\w+ ){0,4}ab\W*$|aufh(o|oe)ren\W+((mir|uns) )?(\w+ )?zu (schreiben|schicken|senden|texten)"
    r"|^\W*stopp\W*[,.!]|nummer (\w+ )?(raus|rausnehmen|streichen)|(streich|entfern)\w* (sie )?mich\b"
    r"|(trag|tragt|tragen) (sie )?mich\b.{0,25}\baus\b"
    r"|(nehmt|nehmen sie|nimm|streicht|streichen sie|entfern\w*|losch\w*|loesch\w*) (bitte |sie )*(mich|meine (handy)?nummer)\b"
    r"|meine (handy)?nummer (bitte )?(loschen|loeschen|entfernen|streichen)"
    r"|lass\w* (sie )?mich (bitte )?in ruhe"
    rf"|stopp?t? (die |alle |eure |ihre )?{_MSGS}"
    r"|(schreib|schick|kontaktier|simst)\w* (mir|uns) (bitte )?nie (wieder|mehr)"
    rf"|{_MSGS}( \w+)? nicht mehr|(diese|eure|ihre) {_MSGS} (\w+ )?nicht"
    rf"|h(o|oe)r\w* (bitte |endlich |sofort |doch )?auf mit (den |diesen |euren |ihren )?{_MSGS}"
    r"|nicht mehr (kontaktiert|angeschrieben|angerufen|benachrichtigt|angesimst)"
    r"|(losch|loesch)\w* (sie )?(bitte )?meine (daten|nummer|handynummer)"
    r"|nichts mehr von (euch|ihnen|dir) (horen|hoeren|bekommen|lesen)"
    rf"|keine {_MSGS} (mehr )?von (euch|ihnen|dir|nova|dieser nummer)"
    r"|(von|aus) (der|dieser|eurer|ihrer|dem|diesem|eurem) (liste|verteiler) (\w+ )?"
    r"(streichen|nehmen|entfernen|loschen|loeschen|austragen)"
    r"|(schick|send)\w* (mir|uns) (bitte )?nichts mehr"
    r"|^\W*(ya )?(no mas|nada mas)\W*$"
    # a stop said to the sender at the end, after the reason: "je n'ai rien demandé, arrêtez"
    r"|(^|[,.!;])\W*(arretez|arrete|arreter|basta|paren|parem|smettetela|smettete|hort auf|hoert auf)"
    r"( svp| s'il vous plait| por favor| per favore| bitte| ya| ja| ahora| maintenant)?\W*$"
    r")(?!\w)",  # a whole word at the end, also after "?" or "!"
    re.IGNORECASE,
)
# "no dejen de mandarme", "nunca parem de me mandar", "non smettete di scrivermi"
_NEGATED_OTHER = re.compile(
    r"\b(no|nunca|jamas|non|mai|nao|nie|niemals|nicht|never|dont|don't|do not|not)\W*$"
)


# texting shorthand of these languages, spelt out before the patterns read the text
_SHORTHAND = (
    (re.compile(r"\b(msjs?|mnsjs?|msgs?|mens|mensages?|mensajs?)\b"), "mensajes"),
    (re.compile(r"\bnn\b"), "non"),  # it
    (re.compile(r"\bn (?=(me|nos|quero|queremos|mande\w*|envie\w*)\b)"), "nao "),  # pt
    (re.compile(r"\bm(?=(envoy|ecri|contact))"), "m'"),  # fr "menvoyez" for "m'envoyez"
    (re.compile(r"\b(xfa|porfa|porfis|pf|pfv)\b"), "por favor"),
    (re.compile(r"\bplu\b"), "plus"),
)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower().replace("’", "'"))
    text = " ".join("".join(ch for ch in text if not unicodedata.combining(ch)).split())
    for pattern, spelt in _SHORTHAND:
        text = pattern.sub(spelt, text)
    return text


# "stop" (or end, cancel, quit) in a sense that is not about the texts
GUARDS = re.compile(
    r"\b("
    r"(can'?t|cannot|cant|won'?t|wont|never|don'?t|dont|do not|not gonna|not|couldn'?t) (ever )?"
    r"(stop|quit|end|cancel|unsubscrib\w*|unsub\w*)\b"
    r"|(next|first|last|final|tour|bus|pit|only|each|every|another) stops?\b"
    r"|stops? (in|at|by|near|through|on|off at)\b"
    r"|stopping (in|at|by|near|through)\b"
    r"|(make|making|add|adding|plan|planning) (a |another |one more )?stop"
    r"|non ?-?stop|unstoppable|nothing (can|could|will) stop"
    r"|stop (listening|playing|dancing|singing|crying|thinking|smiling|streaming|watching|"
    r"loving|screaming|laughing|replaying|the hate|teasing|making me)"
    r"|(show|concert|tour|date|presale|sale|album) (end|ends|ended|ending)\b"
    r"|(want|need|love|send me|get) (some |a few |lots )?more (texts|messages|updates|txts)"
    # asking FOR the texts ("i want to get texts from nova", "sign me up for the texts"): the
    # phrase model reads words, not who wants what, and took these as opt-outs
    r"|(?<!n't )(?<!not )(?<!dont )(?<!longer )(want|wanna|would like|need|love) "
    r"(to (get|receive|keep getting|be getting|have) )?(the |your |ur |some |nova'?s )?"
    r"(texts|txts|messages|msgs|updates|alerts)\b(?!\s+(to )?(stop|end|anymore|no more))"
    r"|(sign|add|put) me (up )?(to|for|on) (the |your |ur |nova'?s )?(texts|txts|messages|list)"
    r"|(never|don'?t|dont|do not) (ever )?want (these|the|your|ur|them|this|it|the texts) "
    r"(\w+ )?to (stop|end)"
    r"|(show|concert|tour|date|gig|event)s? (was |is |got |been |being )?(cancell?ed|cancell?ing)"
    # "cancelled" as a state is news about an event ("tell me it's not cancelled"); a fan
    # opting out cancels, in the imperative ("cancel", "cancel my texts": explicit above)
    r"|(it'?s|its|is|isn'?t|not|was|wasn'?t|be|been|being|get|got|getting) (it |that |this )?"
    r"(\w+ )?cancell?ed\b"
    r"|cancel (my|the|an|a) (order|ticket|tickets|upgrade|purchase|booking|hotel|vip|payment)"
    # what the fan did elsewhere: "i unsubscribed from spotify", "i quit social media"
    r"|\b(i|we) (just |already |finally )?(unsubscribed|unsubbed|quit|stopped|cancell?ed) "
    r"(from |my |using |buying |going |social |spotify|netflix|apple|youtube|tiktok|instagram)"
    r")",
    re.IGNORECASE,
)
# the same in the other languages (on the folded text): can't stop listening, never stop, the
# tour stopping somewhere ("no puedo dejar de escucharla", "il tour si ferma a milano")
OTHER_GUARDS = re.compile(
    r"\b("
    r"no (puedo|paro|dejo|dejare) de|non (riesco a smettere|smetto|smettero|riesco a fermarmi)"
    r"|(je )?n'?(arrete|arreterai) (pas|jamais|plus) d|nao (consigo|paro|vou) (parar|de)"
    r"|(kann|konnen) (einfach )?nicht (mehr )?aufh|nie aufh|hor\w* nie auf"
    r"|(no|nunca|jamais|non|mai|nao|nie|niemals)( \w+)? (dej|par|smett|arret|aufh)\w*"
    r"|(dej|par|smett|arret)\w* (nunca|jamas|jamais|mai|nunca)\b"
    r"|(gira|tour|tournee|turne|konzert\w*) (\w+ )?(para|parara|ferma|fermera|s'arrete|vai parar|halt)"
    r")",
)


# "don't stop texting me", "never stop sending these": the opposite of an opt-out
_NEGATED = re.compile(
    r"(don'?t|dont|do not|never|can'?t|cant|cannot|won'?t|wont|not|not going to|not gonna) (ever )?$",
    re.IGNORECASE,
)


def explicit_opt_out(text: str) -> bool:
    if any(
        not _NEGATED.search(text[max(0, m.start() - 16) : m.start()])
        for m in EXPLICIT_OPT_OUT.finditer(text)
    ):
        return True
    if language.surely_english(text):
        return False  # the other languages' wording costs up to ~1 ms a text: not on English
    folded = _fold(text)
    return any(
        not _NEGATED_OTHER.search(folded[max(0, m.start() - 12) : m.start()])
        for m in OTHER_LANGUAGES_OPT_OUT.finditer(folded)
    )


def guarded(text: str) -> bool:
    """The text uses stop / end / cancel in a sense that is not an opt-out."""
    return GUARDS.search(text) is not None or OTHER_GUARDS.search(_fold(text)) is not None


_CLAUSE_BREAK = re.compile(r"[.!?;:\n]+|,|\s+-+\s+|\b(?:but|though|although|so)\b", re.IGNORECASE)


def clauses(text: str, limit: int = 4) -> list[str]:
    """The sentences and clauses of a longer text (two words or more), at most `limit`."""
    parts = [" ".join(p.split()) for p in _CLAUSE_BREAK.split(text)]
    parts = [p for p in parts if len(p.split()) >= 2]
    return parts[:limit] if len(parts) > 1 else []
