"""A tokenizer for one NLU model that serves twelve languages, including scripts without spaces.

Rasa's WhitespaceTokenizer refuses zh/ja, and a dictionary segmenter (jieba, MeCab) would add a
per-language dependency and still miss shop slang. Short support messages classify well on characters:
- Han and kana runs become one token per character; the word featurizer's bigrams then see
  "退货", "返品", "届か" as pairs, which is what a segmenter would mostly have found.
- Arabic is normalised the way search engines do (no tashkeel/tatweel, one alef, ى→ي, ة→ه), so
  "الطلبية", "الطلبيه" and "الطلبيّة" are one feature.
- Latin text keeps its words; the lemma is lower-cased and stripped of diacritics (and ı→i, ß→ss) so
  "devolución"/"devolucion" and "sipariş"/"siparis" count as the same word.
The original text and offsets are kept on every token; only the lemma, which the count featurizers
read, is normalised.
"""
from __future__ import annotations

import unicodedata
from typing import Any, Dict, List, Optional, Text

import regex

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

# One token per ideograph/kana; other runs split like Rasa's WhitespaceTokenizer does.
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}ー々〆"
_TOKEN_RE = regex.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
# Punctuation at a token's edge carries no meaning ("order?" = "order"), inside it may ("CD-104233", "a@b.de").
_EDGE_PUNCT_RE = regex.compile(r"^[^\w#@&]+|[^\w#@&]+$")

_ARABIC_MARKS_RE = regex.compile(r"[\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED\u0640]")
_ARABIC_FOLD = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي",
                              "ک": "ك", "ی": "ي"})
_LATIN_FOLD = str.maketrans({"ı": "i", "ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d"})


def normalize(word: str) -> str:
    """The form the featurizers count: case-, diacritic- and Arabic-variant-insensitive."""
    word = _ARABIC_MARKS_RE.sub("", word).translate(_ARABIC_FOLD)
    word = unicodedata.normalize("NFKC", word).lower().translate(_LATIN_FOLD)
    decomposed = unicodedata.normalize("NFD", word)
    # Strip combining marks from Latin letters only: in other scripts (kana dakuten) they matter.
    out, previous_latin = [], False
    for ch in decomposed:
        if unicodedata.combining(ch) and previous_latin:
            continue
        out.append(ch)
        previous_latin = "LATIN" in unicodedata.name(ch, "") or (ch.isascii() and ch.isalpha())
    return unicodedata.normalize("NFC", "".join(out))


def split_words(text: str) -> List[tuple[str, int]]:
    """(word, start offset) pairs; CJK characters are words of their own, emoji and bare punctuation dropped."""
    words = []
    for match in _TOKEN_RE.finditer(text):
        word, start = match.group(), match.start()
        stripped = _EDGE_PUNCT_RE.sub("", word)
        if not stripped:
            continue
        start += word.index(stripped)
        words.append((stripped, start))
    return words


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class MultilingualTokenizer(Tokenizer):
    """Whitespace words for spaced scripts, characters for Han/kana, normalised lemmas for all."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"intent_tokenization_flag": False, "intent_split_symbol": "_", "token_pattern": None,
                "prefix_separator_symbol": None}

    @staticmethod
    def not_supported_languages() -> Optional[List[Text]]:
        return None

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "MultilingualTokenizer":
        return cls(config)

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        text = message.get(attribute) or ""
        words = split_words(text)
        if not words:  # only emoji or punctuation ("👍", "??"): one token, so featurizers still see something
            return [Token(text, 0, lemma=normalize(text) or text)] if text else []
        tokens = [Token(word, start, lemma=normalize(word) or word) for word, start in words]
        return self._apply_token_pattern(tokens)
