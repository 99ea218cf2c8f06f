"""Language detection for short shopper messages and the per-conversation language memory.

Shoppers write "ok", "CD-104233", "👍" or "wo ist mein paket" - a few words, often without
diacritics. langdetect alone is unreliable on that, so detection goes in layers:
1. strip what carries no language (order numbers, emails, URLs, phones, digits, emoji, brands);
2. decide by script where the script is decisive (Arabic, kana, Han, Hangul);
3. for Latin text, combine langdetect (restricted to the shop's languages, fixed seed) with a small
   table of shop vocabulary and function words per language.
The conversation language is sticky: one detection never outweighs a conversation on its own,
see choose_language for the exact rules.
"""
from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import phonenumbers
import yaml

SUPPORTED: tuple[str, ...] = ("en", "es", "pt", "fr", "de", "it", "zh", "ja", "id", "ar", "tr", "nl")
DEFAULT_LANGUAGE = "en"

# Our codes -> langdetect profile names (Simplified Chinese is "zh-cn" there).
_LANGDETECT_CODE = {"zh": "zh-cn"}
_FROM_LANGDETECT = {"zh-cn": "zh", "zh-tw": "zh"}
_SCRIPT_LANGUAGES = frozenset({"ar", "zh", "ja"})

# Confidence a detection needs to move a conversation: short messages need more.
SWITCH_CONFIDENCE = 0.80
SHORT_SWITCH_CONFIDENCE = 0.95
SHORT_MESSAGE_WORDS = 2
# Only the start of a message is read: enough to tell the language, and pasted walls of text stay cheap.
MAX_CHARS = 1000


@dataclass(frozen=True)
class Detection:
    language: str | None
    confidence: float
    # False when the text carries no language at all ("ok", "👍", "CD-104233", an email address).
    # True with language None means: a language, but not one we serve (e.g. Korean).
    has_signal: bool


NO_SIGNAL = Detection(None, 0.0, False)

# ---------------------------------------------------------------------------------------------
# Noise: things shoppers paste that say nothing about their language.
_EMAIL_RE = re.compile(r"[\w.%+\-]+@[\w.\-]+\.[A-Za-z]{2,}")
_URL_RE = re.compile(r"(?:https?://|www\.)\S+|\b[\w\-]+(?:\.[\w\-]+)*\.(?:com|net|org|de|fr|es|it|nl|br|mx|jp|cn|id|tr|io|co|shop|store)(?:/\S*)?\b", re.IGNORECASE)
# CD-104233, #104233, +49 151 ..., 3x, 42EU - but only the ASCII run: in "订单104233到哪了" the Chinese stays.
_WITH_DIGIT_RE = re.compile(r"[A-Za-z0-9#+\-_./:]*\d[A-Za-z0-9#+\-_./:]*")
_WORD_RE = re.compile(r"[^\W\d_]+")
_ELONGATION_RE = re.compile(r"(.)\1{2,}")
_LAUGH_RE = re.compile(r"(?:[hjkx][aeiou]){2,}[hjk]?|(?:wk)+w?|(?:lo)+l|(?:ah|eh)+")  # hahaha, jajaja, kkk, wkwk, lolol

# Words that exist (or are used) the same way in many of our languages, so they prove nothing.
# Decision: "no", "si", "ja", "ya" and anything of one or two letters are treated as no signal -
# "no" is en/es/it/pt, "si" es/it/fr, "ja" de/nl, "ya" es/id.
_NO_SIGNAL_WORDS = frozenset("""
ok okay okey oki okk okie kk k lol lmao lmfao rofl haha hahaha hahahaha hehe hihi jaja jajaja jajajaja
kkk kkkk xd xdd wkwk wkwkwk ya yaa si sii no noo ja jaa mmm hmm hm uh ah oh eh aha wow omg pls plz
dhl ups fedex dpd gls usps tnt sms whatsapp paypal visa mastercard amazon iphone samsung email mail
id sku pdf
""".split())

# ---------------------------------------------------------------------------------------------
# Shop vocabulary and function words, diacritics stripped ("pedido", "siparis*"); "*" = prefix.
# Words shared by two languages are listed under both: langdetect breaks the tie.
_KEYWORDS: dict[str, str] = {
    "en": """where wheres is my the order orders package parcel refund return returned delivery delivered
        shipping shipped tracking track hi hello thanks thank you please when will arrive arrived received
        yet still not cancel help how what wrong size broken damaged want need can it didnt dont hasnt
        havent get got money back item status haven didn doesn isn wasn any update tell me whats why
        your have has been there this that send sent and with for of its still missing hey""",
    "es": """donde esta estan mi mis pedido pedidos paquete envio envios devolucion devolver reembolso hola
        gracias cuando llega llego llegado llegara todavia aun quiero cancelar ayuda favor porfa porfavor que
        como talla roto dinero hay el los las del es tengo necesito puedo cambiar cuanto tarda buenas buenos
        dias tardes seguimiento numero compra producto recibi recibido nada pero tambien estoy esperando
        sigue sin con para nunca ningun vino mande cuál cual hice ustedes usted me mandaron dónde devol*
        reembols* porque mucho equivocado paquetes entrega""",
    "pt": """onde esta meu minha meus minhas pedido encomenda pacote entrega devolucao reembolso ola obrigado
        obrigada quando chega chegou ainda nao quero cancelar ajuda favor como tamanho dinheiro voce vc ta
        oi bom dia boa tarde rastreio rastreamento codigo compra produto recebi nada mas tambem estou
        esperando sem com para nunca veio trocar troca preciso posso cade quanto tempo do da meu
        encomend* devolv* reembols* vcs nenhum errado cheguei fiz comprei quebrado""",
    "fr": """ou est mon ma mes commande commandes colis livraison remboursement retour bonjour salut merci
        quand arrive arrivee toujours pas je veux annuler aide svp stp comment taille argent vous ai recu
        suivi numero achat produit rien mais aussi attends sans avec pour jamais changer echanger besoin
        peux combien temps le les du des il ne etait cest jai quoi rembours* livr* command* recu
        encore casse mauvais toujours reçu avez pouvez""",
    "de": """wo ist mein meine meinen meiner bestellung paket lieferung sendung erstattung rucksendung retoure
        zuruck hallo danke wann kommt noch nicht ich will mochte stornieren hilfe bitte wie grosse geld sie
        du habe hab erhalten bekommen sendungsverfolgung nummer kauf produkt nichts aber auch warte ohne mit
        fur nie umtauschen brauche kann wieviel lange der die das den dem ein eine kaputt falsch schon guten
        tag morgen immer angekommen geliefert ware rechnung bestell* liefer* sendung* ruckerstattung
        zurucksenden gibt es wurde geld zuruck status""",
    "it": """dove il mio mia miei mie ordine ordini pacco spedizione consegna rimborso reso ciao buongiorno
        grazie quando arriva arrivato ancora non voglio annullare aiuto per favore come taglia soldi ho
        ricevuto tracciamento numero acquisto prodotto niente ma anche aspetto senza con mai cambiare
        bisogno posso quanto tempo lo gli del della rotto sbagliato dov ce sono perche ordin* spedi*
        consegn* rimbors* arrivata salve""",
    "id": """mana pesanan saya paket pengiriman kiriman pengembalian halo terima kasih makasih kapan sampai
        sampe belum tidak nggak gak ga mau batal batalkan bantu tolong bagaimana gimana ukuran uang anda kak
        kakak sudah udah resi nomor beli barang produk tapi juga tunggu nunggu tanpa dengan untuk tukar perlu
        bisa berapa lama yang ini itu rusak salah dimana di kok sih dong min gan apa kenapa masih datang
        diterima ongkir dana kembali pesan* kirim* dikirim aku blm udh sy""",
    "tr": """nerede nerde siparis* kargo* paket* teslimat iade para merhaba selam tesekkur* sagol zaman gelmedi
        gelir hala henuz degil istiyorum iptal yardim lutfen nasil beden numara aldim urun* hicbir ama
        bekliyorum olmadan ile icin hic degistir* lazim gerek kac gun bu bir yanlis bozuk kirik neden niye ne
        var yok mi mu musunuz misiniz takip gonder* ulasmadi geldi bekle* ne zaman kirik iade* param
        hesab* yardimci olur""",
    "nl": """waar is mijn bestelling pakket pakje levering bezorging terugbetaling retour hallo hoi dank bedankt
        wanneer komt nog niet ik wil annuleren hulp alsjeblieft aub graag hoe maat geld u je jij heb
        ontvangen gekregen nummer aankoop product niks niets maar ook wacht zonder met voor nooit ruilen
        nodig kan hoeveel lang het een kapot verkeerd al blijft geleverd bezorgd terug dag goedemorgen
        bestel* bezorg* geld waarom wat zijn""",
}


def _compile_keywords() -> tuple[dict[str, frozenset[str]], dict[str, tuple[str, ...]]]:
    exact: dict[str, frozenset[str]] = {}
    prefixes: dict[str, tuple[str, ...]] = {}
    for lang, words in _KEYWORDS.items():
        normalised = [_fold(w) for w in words.split()]
        exact[lang] = frozenset(w for w in normalised if not w.endswith("*"))
        prefixes[lang] = tuple(w[:-1] for w in normalised if w.endswith("*"))
    return exact, prefixes


def _fold(text: str) -> str:
    """Lowercase without diacritics: shoppers type "donde esta", "siparisim", "reçu" alike."""
    text = text.lower().replace("ı", "i").replace("ß", "ss")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_EXACT, _PREFIXES = _compile_keywords()
# langdetect is over-confident on a few words (0.99999 for the wrong language is common), so its
# log-probability is damped and floored; each matching shop word then adds _KEYWORD_WEIGHT:
# two more matching words than the runner-up outweigh a confident langdetect.
_KEYWORD_WEIGHT = 1.2
_LANGDETECT_FLOOR = 0.05


# ---------------------------------------------------------------------------------------------
# Scripts.
def _script_counts(text: str) -> dict[str, int]:
    counts = {"latin": 0, "arabic": 0, "han": 0, "kana": 0, "hangul": 0, "other": 0}
    for ch in text:
        cp = ord(ch)
        if 0x3040 <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF or 0xFF66 <= cp <= 0xFF9D:
            counts["kana"] += 1
        elif 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF:
            counts["han"] += 1
        elif 0x0600 <= cp <= 0x06FF or 0x0750 <= cp <= 0x077F or 0x08A0 <= cp <= 0x08FF or 0xFB50 <= cp <= 0xFEFF:
            counts["arabic"] += 1
        elif 0xAC00 <= cp <= 0xD7AF or 0x1100 <= cp <= 0x11FF or 0x3130 <= cp <= 0x318F:
            counts["hangul"] += 1
        elif ch.isalpha():
            if unicodedata.name(ch, "").startswith("LATIN"):
                counts["latin"] += 1
            else:
                counts["other"] += 1
    return counts


def _script_language(counts: dict[str, int], allowed: frozenset[str]) -> Detection | None:
    """Decide by script when a non-Latin script dominates; None means: go on with Latin detection.

    CJK characters carry a word each, so they count double against Latin letters.
    """
    cjk = counts["han"] + counts["kana"]
    non_latin = counts["arabic"] + cjk + counts["hangul"] + counts["other"]
    if non_latin == 0 or (counts["arabic"] + counts["other"] + 2 * (cjk + counts["hangul"])) < counts["latin"]:
        return None
    best = max(("arabic", "cjk", "hangul", "other"),
               key=lambda s: counts[s] if s != "cjk" else cjk)
    if best == "arabic":
        lang = "ar"
    elif best == "cjk":
        # Kana only exists in Japanese; Han alone is Chinese unless the shop serves only Japanese.
        lang = "ja" if counts["kana"] else ("zh" if "zh" in allowed else "ja")
    else:  # Hangul, Cyrillic, Thai...: a language, just not one we serve
        return Detection(None, 0.0, True)
    if lang not in allowed:
        return Detection(None, 0.0, True)
    return Detection(lang, 0.99, True)


# ---------------------------------------------------------------------------------------------
# langdetect, restricted and seeded.
_factory_lock = threading.Lock()
_factory = None


def _detector_factory():
    """Our own seeded DetectorFactory, so results never depend on what else imported langdetect."""
    global _factory
    with _factory_lock:
        if _factory is None:
            from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

            DetectorFactory.seed = 0
            factory = DetectorFactory()
            factory.load_profile(PROFILES_DIRECTORY)
            factory.set_seed(0)
            _factory = factory
        return _factory


def _langdetect_probabilities(text: str, languages: Iterable[str]) -> dict[str, float]:
    """langdetect probabilities over `languages` only (non-allowed profiles get prior 0); {} if it cannot tell."""
    try:
        factory = _detector_factory()
        known = set(factory.get_lang_list())
        prior = {_LANGDETECT_CODE.get(lang, lang): 1.0 for lang in languages}
        prior = {code: p for code, p in prior.items() if code in known}
        if not prior:
            return {}
        detector = factory.create()
        detector.set_prior_map(prior)
        detector.append(text)
        result: dict[str, float] = {}
        for item in detector.get_probabilities():
            lang = _FROM_LANGDETECT.get(item.lang, item.lang)
            if lang in languages:
                result[lang] = result.get(lang, 0.0) + item.prob
        return result
    except Exception:  # LangDetectException on featureless text, or anything odd: no opinion
        return {}


def _keyword_hits(words: list[str], languages: Iterable[str]) -> dict[str, int]:
    hits = {}
    for lang in languages:
        exact, prefixes = _EXACT.get(lang, frozenset()), _PREFIXES.get(lang, ())
        n = sum(1 for w in words if w in exact or (len(w) >= 4 and any(w.startswith(p) for p in prefixes)))
        if n:
            hits[lang] = n
    return hits


def _strip_noise(text: str) -> str:
    text = _EMAIL_RE.sub(" ", text)
    text = _URL_RE.sub(" ", text)
    return _WITH_DIGIT_RE.sub(" ", text)


def _signal_words(text: str) -> list[str]:
    """Folded words that could say something about the language."""
    words = [_fold(w) for w in _WORD_RE.findall(text)]
    # "xxxxx", "zzzz", "hhhh": one letter held down is not a word of any language
    return [w for w in words if len(w) > 2 and len(set(w)) > 1 and w not in _NO_SIGNAL_WORDS
            and _ELONGATION_RE.sub(r"\1\1", w) not in _NO_SIGNAL_WORDS  # "hmmmm", "okkkk" = "hmm", "okk"
            and not _LAUGH_RE.fullmatch(w)]


def detect_language(text: str, allowed: Iterable[str] = SUPPORTED) -> Detection:
    """Language of one message, restricted to `allowed`; never raises, deterministic."""
    try:
        return _detect((text or "")[:MAX_CHARS], frozenset(allowed))
    except Exception:
        return NO_SIGNAL


def _detect(text: str, allowed: frozenset[str]) -> Detection:
    cleaned = _strip_noise(text)
    by_script = _script_language(_script_counts(cleaned), allowed)
    if by_script is not None:
        return by_script
    words = _signal_words(cleaned)
    if not words:
        return NO_SIGNAL
    # Latin-script candidates: Arabic too, because Arabic shoppers often write Arabizi ("wen el order").
    latin = [lang for lang in SUPPORTED if lang in allowed and lang not in ("zh", "ja")]
    custom = sorted(lang for lang in allowed if lang not in SUPPORTED)  # shop languages we have no data for
    if not latin and not custom:
        return Detection(None, 0.0, True)
    plain = " ".join(_WORD_RE.findall(cleaned))
    probabilities = _langdetect_probabilities(plain, latin + custom)
    # A language we have no shopper data for (served by machine translation) wins on langdetect alone,
    # and only when it is sure: its vocabulary is not in the n-gram model.
    if custom:
        best_custom = max(custom, key=lambda lang: probabilities.get(lang, 0.0))
        if probabilities.get(best_custom, 0.0) >= CUSTOM_LANGUAGE_CONFIDENCE and len(words) >= 2:
            return Detection(best_custom, round(probabilities[best_custom], 4), True)
    if not latin:
        return Detection(None, 0.0, True)
    model = _ngram_model()
    if model.counts and len(words) <= GIBBERISH_MAX_WORDS and not any(model.knows_word(w) for w in words) \
            and not any(_keyword_hits([w], latin + custom) for w in words) \
            and model.looks_like_keyboard_mash(text):
        return NO_SIGNAL  # "qwzx vbnm": no word and hardly a letter sequence any shopper has written
    everything = [lang for lang in SUPPORTED if lang not in ("zh", "ja")]
    known = model.log_likelihoods(text, everything)
    if known is not None and not set(everything) <= allowed:
        # A language we know but the shop does not serve ("auf Deutsch bitte" in an en/fr shop) is not
        # evidence for the closest served one.
        outsider = max((lang for lang in everything if lang not in allowed), key=known.__getitem__)
        if known[outsider] - max(known[lang] for lang in latin) >= UNSERVED_MARGIN:
            return Detection(None, 0.0, True)
    loglik = {lang: known[lang] for lang in latin} if known is not None else None
    if loglik is None:  # no model data at all: langdetect and the keyword table
        hits = _keyword_hits([_fold(w) for w in _WORD_RE.findall(cleaned)], latin)
        loglik = {lang: _KEYWORD_WEIGHT * hits.get(lang, 0) for lang in latin}
    scores = {lang: loglik[lang] + _LANGDETECT_WEIGHT * math.log(max(probabilities.get(lang, 0.0), _LANGDETECT_FLOOR))
              for lang in latin}
    top = max(scores.values())
    weights = {lang: math.exp((score - top) / _CONFIDENCE_TEMPERATURE) for lang, score in scores.items()}
    total = sum(weights.values())
    # Ties resolve in SUPPORTED order, which keeps the answer stable.
    best = max(latin, key=lambda lang: (weights[lang], -latin.index(lang)))
    return Detection(best, round(weights[best] / total, 4), True)


# ---------------------------------------------------------------------------------------------
# A character n-gram model of how shoppers write in each language, learnt from the bot's own NLU
# training data (data/nlu/<lang>/nlu.yml, ~750 messages per language, incl. typos, slang, Arabizi
# and missing diacritics). langdetect's profiles come from Wikipedia prose: on chat messages of up
# to six words it was right 89 % of the time here, this model 95.5 % (bench/language_detection.py).
NGRAM_SIZES = (1, 2, 3, 4)
NGRAM_ALPHA = 0.01  # additive smoothing; small, because unseen n-grams are common in short messages
_LANGDETECT_WEIGHT = 0.3
_CONFIDENCE_TEMPERATURE = 4.0  # summed log-likelihoods are over-sure; this spreads them to usable confidences
CUSTOM_LANGUAGE_CONFIDENCE = 0.90
GIBBERISH_MAX_WORDS = 3  # up to this many words, none of them known anywhere: maybe keyboard mash
MASH_MIN_COVERAGE = 0.70
MASH_MAX_MEAN_LOGLIK = -8.7
UNSERVED_MARGIN = 3.0  # nats by which a known-but-unserved language must beat the served ones
NLU_DATA = Path(__file__).resolve().parents[2] / "data" / "nlu"


def _ngrams(text: str) -> list[str]:
    out = []
    for word in _WORD_RE.findall(_fold(_strip_noise(text))):
        out.append("w:" + word)
        padded = f" {word} "
        for n in NGRAM_SIZES:
            out += [padded[i:i + n] for i in range(len(padded) - n + 1) if padded[i:i + n].strip()]
    return out


class _NgramModel:
    """Multinomial naive Bayes over words and character n-grams, per language."""

    def __init__(self, counts: dict[str, Counter]):
        self.counts = counts
        self.vocabulary = set().union(*counts.values()) if counts else set()
        size = len(self.vocabulary)
        self.denominator = {lang: math.log(sum(c.values()) + NGRAM_ALPHA * size) for lang, c in counts.items()}

    @classmethod
    def from_directory(cls, directory: Path) -> "_NgramModel":
        counts: dict[str, Counter] = {}
        for lang in SUPPORTED:
            path = directory / lang / "nlu.yml"
            if not path.exists():
                continue
            counter: Counter = Counter()
            for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
                for line in str(block.get("examples", "")).splitlines():
                    line = line.strip()
                    if line.startswith("- "):
                        counter.update(_ngrams(line[2:]))
            counts[lang] = counter
        return cls(counts)

    def knows_word(self, word: str) -> bool:
        return f"w:{word}" in self.vocabulary

    def looks_like_keyboard_mash(self, text: str) -> bool:
        """Unknown words whose letter sequences are also rare in every language ("qwzx", "fghfgh"), as
        opposed to unknown real words ("tschüssikowski", "okidoki"): few of their n-grams occur in the
        data, or the ones that do are improbable everywhere (thresholds from the held-out sets)."""
        grams = [g for g in _ngrams(text) if not g.startswith("w:")]
        seen = [g for g in grams if g in self.vocabulary]
        if not grams:
            return False
        coverage = len(seen) / len(grams)
        if coverage < MASH_MIN_COVERAGE or not seen:
            return True
        best = max(sum(math.log(c[g] + NGRAM_ALPHA) for g in seen) - len(seen) * self.denominator[lang]
                   for lang, c in self.counts.items())
        return best / len(seen) < MASH_MAX_MEAN_LOGLIK

    def log_likelihoods(self, text: str, languages: Iterable[str]) -> dict[str, float] | None:
        languages = list(languages)
        if not languages or any(lang not in self.counts for lang in languages):
            return None
        grams = [g for g in _ngrams(text) if g in self.vocabulary]
        return {lang: sum(math.log(self.counts[lang][g] + NGRAM_ALPHA) for g in grams)
                - len(grams) * self.denominator[lang] for lang in languages}


_model: _NgramModel | None = None


def _ngram_model() -> _NgramModel:
    global _model
    with _factory_lock:
        if _model is None:
            _model = _NgramModel.from_directory(NLU_DATA)
        return _model


# ---------------------------------------------------------------------------------------------
# Priors: what we know about the shopper before reading the message.
# Main language per phone region (only regions where one of ours is clearly the main language).
REGION_LANGUAGE = {
    **dict.fromkeys(("US", "GB", "GG", "JE", "IM", "IE", "AU", "NZ", "CA", "ZA", "SG", "IN", "PH", "NG", "KE", "JM"), "en"),
    **dict.fromkeys(("ES", "MX", "AR", "CO", "CL", "PE", "VE", "EC", "GT", "CU", "BO", "DO", "HN", "PY",
                     "SV", "NI", "CR", "PA", "UY", "PR"), "es"),
    **dict.fromkeys(("BR", "PT", "AO", "MZ", "CV"), "pt"),
    **dict.fromkeys(("FR", "LU", "MC", "SN", "CI"), "fr"),
    **dict.fromkeys(("DE", "AT", "LI"), "de"),
    **dict.fromkeys(("IT", "SM", "VA"), "it"),
    **dict.fromkeys(("CN",), "zh"),
    **dict.fromkeys(("JP",), "ja"),
    **dict.fromkeys(("ID",), "id"),
    **dict.fromkeys(("AE", "SA", "EG", "QA", "KW", "BH", "OM", "JO", "IQ", "LB", "SY", "YE", "LY", "SD",
                     "MA", "TN", "DZ"), "ar"),
    **dict.fromkeys(("TR",), "tr"),
    **dict.fromkeys(("NL", "SR"), "nl"),
}


def language_for_phone(phone: str | None) -> str | None:
    """Main language of the phone number's country (+49 -> de); WhatsApp ids come without the "+"."""
    raw = (phone or "").strip()
    if not raw:
        return None
    if not raw.startswith("+"):
        raw = "+" + raw.lstrip("0")
    try:
        parsed = phonenumbers.parse(raw, None)
        # Exact region for valid numbers; else the country code's main region (+44 -> GB).
        region = phonenumbers.region_code_for_number(parsed) or \
            phonenumbers.region_code_for_country_code(parsed.country_code)
    except Exception:
        return None
    return REGION_LANGUAGE.get(region or "")


def _base_language(tag: str) -> str | None:
    tag = tag.strip().replace("_", "-").lower()
    if not tag or tag == "*":
        return None
    base = tag.split("-")[0]
    if base == "zh" and any(part in ("tw", "hk", "mo", "hant") for part in tag.split("-")[1:]):
        return None  # Traditional Chinese: we only answer in Simplified
    return "id" if base == "in" else base  # "in" is the old code for Indonesian


def parse_accept_language(header: str | None, allowed: Iterable[str] = SUPPORTED) -> list[str]:
    """Allowed languages from an Accept-Language / Content-Language value, best first.

    "es-MX,es;q=0.9,en;q=0.8" -> ["es", "en"]. Malformed parts are skipped, q=0 is a refusal.
    """
    allowed = frozenset(allowed)
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = _base_language(tag)
        if lang and lang in allowed and quality > 0:
            ranked.append((-quality, position, lang))
    result: list[str] = []
    for _, _, lang in sorted(ranked):
        if lang not in result:
            result.append(lang)
    return result


@dataclass(frozen=True)
class Priors:
    """What we know before reading the message. Strength order (first wins), see ranked():

    widget locale > browser Accept-Language > customer profile > phone country > email Content-Language.
    The widget locale and browser are what the shopper actually reads in right now; the profile
    is what they used with us before; the phone country is a guess about residence (expats,
    US numbers of Spanish speakers); Content-Language is usually a mail client default.
    """
    profile_language: str | None = None
    phone: str | None = None
    accept_language: str | None = None
    widget_locale: str | None = None
    content_language: str | None = None

    def ranked(self, allowed: Iterable[str] = SUPPORTED) -> list[tuple[str, str]]:
        """(source, language) pairs, strongest first, only allowed languages."""
        allowed = frozenset(allowed)
        out: list[tuple[str, str]] = []
        widget = parse_accept_language(self.widget_locale, allowed)
        if widget:
            out.append(("widget_locale", widget[0]))
        out += [("accept_language", lang) for lang in parse_accept_language(self.accept_language, allowed)]
        profile = parse_accept_language(self.profile_language, allowed)
        if profile:
            out.append(("profile", profile[0]))
        phone = language_for_phone(self.phone)
        if phone in allowed:
            out.append(("phone_country", phone))
        out += [("content_language", lang) for lang in parse_accept_language(self.content_language, allowed)]
        return out

    def languages(self, allowed: Iterable[str] = SUPPORTED) -> frozenset[str]:
        return frozenset(lang for _, lang in self.ranked(allowed))


# ---------------------------------------------------------------------------------------------
# Explicit requests: "can you speak Spanish?", "auf Deutsch bitte", "日本語で".
_LANGUAGE_NAMES: dict[str, str] = {
    "en": "english ingles anglais englisch inglese engels ingilizce inggris 英语 英語 英文 انجليزي الانجليزية الإنجليزية بالانجليزي بالإنجليزي بالانجليزية",
    "es": "spanish espanol castellano espagnol spanisch spagnolo espanhol spaans ispanyolca spanyol 西班牙语 西班牙語 スペイン語 بالاسباني الإسبانية الاسبانية",
    "pt": "portuguese portugues portugais portugiesisch portoghese portugees portekizce portugis 葡萄牙语 ポルトガル語 البرتغالية بالبرتغالي",
    "fr": "french frances francais franzosisch francese frans fransizca perancis 法语 法語 フランス語 بالفرنسي الفرنسية بالفرنسية",
    "de": "german aleman allemand deutsch tedesco alemao duits almanca jerman 德语 德語 ドイツ語 بالالماني الألمانية الالمانية",
    "it": "italian italiano italien italienisch italiaans italyanca italia 意大利语 イタリア語 بالايطالي الإيطالية الايطالية",
    "zh": "chinese chino chinois chinesisch cinese chines chinees cince mandarin mandarim 中文 汉语 普通话 华语 中国語 中国话 بالصيني الصينية",
    "ja": "japanese japones japonais japanisch giapponese japans japonca jepang 日本語 日语 日文 باليابانية اليابانية",
    "id": "indonesian indonesio indonesien indonesisch indonesiano endonezce indonesia 印尼语 インドネシア語 الإندونيسية",
    "ar": "arabic arabe arabisch arabo arapca arab 阿拉伯语 アラビア語 بالعربي بالعربية العربية عربي",
    "tr": "turkish turco turc turkisch turkce turks turki 土耳其语 トルコ語 بالتركي التركية",
    "nl": "dutch holandes neerlandais niederlandisch olandese nederlands hollandaca vlaams belanda 荷兰语 オランダ語 بالهولندي الهولندية",
}
# A language name alone could be an adjective ("italian shoes"), so it needs a request cue nearby
# or a message of at most three words ("English?", "in italiano", "Türkçe").
_REQUEST_CUES = frozenset(_fold(w) for w in """
speak talk write reply answer respond switch in please pls can could do you language
habla hablas hablan hablar hablame escribe escribir en por favor puede puedes idioma
fala falar falam falem pode podem em lingua
parle parlez parles parler ecrire svp stp langue
sprechen sprichst sprecht spreche auf bitte schreiben sprache
parla parli parlate parlare scrivere lingua
spreek spreekt spreken praten het alstublieft alsjeblieft taal
konus konusur konusabilir konusabilirmisiniz konusun yazar yazabilir misiniz musunuz dil lutfen
bisa pakai pake dalam bicara bahasa tolong
""".split())
_CJK_ARABIC_CUES = ("で", "说", "說", "讲", "講", "用", "話", "话", "できます", "ください", "吗", "嗎", "ممكن", "تتكلم", "تحكي", "لو سمحت")


def explicit_request(text: str, allowed: Iterable[str] = SUPPORTED) -> str | None:
    """The language the shopper asks us to use, if they ask ("¿hablas inglés?" -> en)."""
    try:
        allowed = frozenset(allowed)
        folded = _fold((text or "")[:MAX_CHARS])
        words = _WORD_RE.findall(folded)
        word_set = set(words)
        has_cue = bool(word_set & _REQUEST_CUES) or any(cue in folded for cue in _CJK_ARABIC_CUES)
        short = len(words) <= 3
        for lang, names in _LANGUAGE_NAMES.items():
            if lang not in allowed:
                continue
            for name in names.split():
                name = _fold(name)
                if name.isascii():
                    found = name in word_set
                else:  # CJK and Arabic names are matched inside the text
                    found = name in folded
                if found and (has_cue or short):
                    return lang
    except Exception:
        return None
    return None


# ---------------------------------------------------------------------------------------------
# The conversation's language.
@dataclass(frozen=True)
class Choice:
    language: str
    switched: bool
    reason: str


_SCRIPT_OF = {"ar": "arabic", "zh": "han", "ja": "kana"}


def _word_count(text: str) -> int:
    cleaned = _strip_noise(text)
    counts = _script_counts(cleaned)
    latin_words = len(_WORD_RE.findall("".join(ch if not _is_cjk(ch) else " " for ch in cleaned)))
    # Roughly two CJK characters per word.
    return latin_words + (counts["han"] + counts["kana"] + 1) // 2


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return 0x3040 <= cp <= 0x30FF or 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF


def _different_script(current: str, detected: str) -> bool:
    return _SCRIPT_OF.get(current, "latin") != _SCRIPT_OF.get(detected, "latin")


def choose_language(current: str | None, text: str, priors: Priors | None = None,
                    allowed: Iterable[str] = SUPPORTED) -> Choice:
    """The language to answer this message in. Rules, in order:

    1. an explicit request ("auf Deutsch bitte") always wins;
    2. with a current language, it is sticky:
       - messages without signal ("ok", "👍", "CD-104233", emails) never switch it;
       - Han-only text keeps a Japanese conversation (kanji are Japanese too);
       - a short message (<= 2 words) switches only with very high confidence AND either a
         prior agreeing or a clearly different script ("退货" in an English chat);
       - a longer message switches with confidence >= SWITCH_CONFIDENCE;
    3. with no current language: the detection if there is a signal (for a short message, only if
       confident or no prior disagrees), else the strongest prior, else DEFAULT_LANGUAGE.
    Never raises: on any failure the current language (or the default) is kept.
    """
    allowed = frozenset(allowed)
    priors = priors or Priors()
    fallback = current if current in allowed else None
    try:
        return _choose(fallback, (text or "")[:MAX_CHARS], priors, allowed)
    except Exception:
        return Choice(fallback or _first_prior(priors, allowed)[1], False, "error_fallback")


def _first_prior(priors: Priors, allowed: frozenset[str]) -> tuple[str, str]:
    try:
        ranked = priors.ranked(allowed)
    except Exception:
        ranked = []
    if ranked:
        return ranked[0]
    return "default", DEFAULT_LANGUAGE if DEFAULT_LANGUAGE in allowed or not allowed else sorted(allowed)[0]


def _choose(current: str | None, text: str, priors: Priors, allowed: frozenset[str]) -> Choice:
    requested = explicit_request(text, allowed)
    if requested:
        return Choice(requested, current is not None and requested != current, "explicit_request")

    detection = detect_language(text, allowed)
    short = _word_count(text) <= SHORT_MESSAGE_WORDS
    prior_languages = priors.languages(allowed)

    if current is None:
        if detection.language:
            if not short or detection.confidence >= SHORT_SWITCH_CONFIDENCE or not prior_languages \
                    or detection.language in prior_languages:
                return Choice(detection.language, False, "detected")
        source, lang = _first_prior(priors, allowed)
        return Choice(lang, False, f"prior:{source}" if source != "default" else "default")

    if not detection.has_signal:
        return Choice(current, False, "no_signal")
    if detection.language is None:
        return Choice(current, False, "unsupported_language")
    if detection.language == current:
        return Choice(current, False, "same_language")
    if current == "ja" and detection.language == "zh" and not _script_counts(text)["latin"]:
        return Choice(current, False, "han_shared_with_ja")
    if short:
        confident = detection.confidence >= SHORT_SWITCH_CONFIDENCE
        if confident and (_different_script(current, detection.language) or detection.language in prior_languages):
            return Choice(detection.language, True, "detected_short")
        return Choice(current, False, "short_message_kept")
    if detection.confidence >= SWITCH_CONFIDENCE:
        return Choice(detection.language, True, "detected")
    return Choice(current, False, "low_confidence")


@dataclass
class LanguageMemory:
    """One conversation's language: feed it every inbound message, read .language for the reply."""
    priors: Priors = field(default_factory=Priors)
    allowed: tuple[str, ...] = SUPPORTED
    language: str | None = None
    history: list[Choice] = field(default_factory=list)

    def observe(self, text: str) -> Choice:
        choice = choose_language(self.language, text, self.priors, self.allowed)
        self.language = choice.language
        self.history.append(choice)
        return choice


# ---------------------------------------------------------------------------------------------
# Languages we do not serve natively.
FOREIGN_MIN_WORDS = 3
FOREIGN_CONFIDENCE = 0.90


def foreign_language(text: str, served: Iterable[str] = SUPPORTED, candidates: Iterable[str] = ()) -> str | None:
    """The language of a message written in a language we do not serve ("배송 언제 와요" -> "ko").

    Restricted detection always answers with one of our languages, so this asks langdetect with all its
    profiles - only when it is very sure, and only when our shop-vocabulary tables recognise fewer than
    half of the words. Other scripts (Hangul, Cyrillic, Thai...) are unambiguous. In Latin script it
    needs >= 3 signal words and only answers with one of `candidates` (languages we can translate):
    langdetect's full profile set calls ~2 % of short English/Dutch/Indonesian messages Afrikaans, Welsh
    or Tagalog. Never raises.
    """
    try:
        served = frozenset(served)
        cleaned = _strip_noise((text or "")[:MAX_CHARS])
        counts = _script_counts(cleaned)
        by_script = _script_language(counts, frozenset(SUPPORTED))
        if by_script is not None and by_script.language is not None:
            return None  # Arabic, Han, kana: ours
        words = _signal_words(cleaned)
        other_script = counts["hangul"] + counts["other"] > counts["latin"]  # Hangul, Cyrillic, Thai...: no doubt
        if not words or (len(words) < FOREIGN_MIN_WORDS and not other_script):
            return None
        ours = [lang for lang in SUPPORTED if lang in served]
        known = sum(1 for word in words if any(_keyword_hits([word], ours).values()))
        if known * 2 >= len(words):  # mostly words of our languages ("wo ist mein paket")
            return None
        detector = _detector_factory().create()
        detector.append(" ".join(_WORD_RE.findall(cleaned)))
        best = max(detector.get_probabilities(), key=lambda item: item.prob)
        code = _FROM_LANGDETECT.get(best.lang, best.lang)
        if best.prob >= FOREIGN_CONFIDENCE and code not in served and (other_script or code in set(candidates)):
            return code
    except Exception:
        return None
    return None
