"""Offline machine translation: argostranslate packages installed under crossdesk's state directory.

Why it looks like this:
- argostranslate reads its settings (package dir, XDG dirs, sentence splitter) once, at import, and its
  import pulls in torch via stanza. So nothing imports it at module load: :func:`configure` sets the
  environment first and the import happens lazily, once, on first use (or :func:`warm`).
- Nothing here may touch the network. Sentence splitting uses spaCy with the blank pipeline shipped in
  each package (``ARGOS_CHUNK_TYPE=SPACY``); the package index is never read.
- A wrong order number or a "translated" carrier name is worse than no translation, so protected spans
  (see :mod:`crm.i18n.protect`) are swapped for ``<phN>`` tokens and must come back exactly once
  each; otherwise the caller gets ``ok=False`` and the original text. This module never raises from
  :func:`translate`; callers fall back to English plus a human.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

from crm.i18n.protect import (MAX_PLACEHOLDERS, check_placeholders, has_words, load_glossary, protect, restore)

log = logging.getLogger("crossdesk.translation")

PIVOT = "en"  # every shipped or downloadable Argos pair goes through English
CACHE_SIZE = 4096
_XDG = ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")
_JINJA = re.compile(r"\{\{\s*(\w+)\s*\}\}")

_lock = threading.RLock()  # argostranslate's caches are not thread-safe; one translation at a time
_home: Path | None = None
_argos: SimpleNamespace | None = None
_pairs: set[tuple[str, str]] | None = None
_cache: OrderedDict[tuple, Translation] = OrderedDict()


@dataclass(frozen=True)
class Translation:
    """Result of :func:`translate`: on failure ``text`` is the original and ``reason`` says why."""

    text: str
    ok: bool
    route: tuple[str, ...]
    reason: str | None = None


class PackageError(ValueError):
    """An .argosmodel file that cannot be installed (missing, not a zip, corrupted, incomplete)."""


# ------------------------------------------------------------------------------------------- setup
def default_home() -> Path:
    """``<CROSSDESK_HOME or repo/var>/translation``: runtime state, outside git's view."""
    from crm.config import state_dir

    return state_dir() / "translation"


def _dirs(home: Path) -> dict[str, Path]:
    # Packages get a directory of their own: argostranslate treats every subdirectory of it as a package.
    return {"packages": home / "packages", "XDG_DATA_HOME": home / "xdg" / "data",
            "XDG_CACHE_HOME": home / "xdg" / "cache", "XDG_CONFIG_HOME": home / "xdg" / "config"}


def configure(home: Path | None = None) -> Path:
    """Point translation at ``home`` (default :func:`default_home`) before argostranslate is imported.

    Idempotent. Calling it again with another home after the import re-targets argostranslate's
    package directory (used by tests); the XDG dirs of the first import stay.
    """
    global _home, _pairs
    home = Path(home or default_home()).resolve()
    with _lock:
        if home == _home:
            return home
        dirs = _dirs(home)
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        os.environ["ARGOS_PACKAGES_DIR"] = str(dirs["packages"])
        os.environ["ARGOS_CHUNK_TYPE"] = "SPACY"  # stanza/MiniSBD would download models on first use
        os.environ.setdefault("ARGOS_DEVICE_TYPE", "cpu")
        os.environ.setdefault("ARGOS_INTER_THREADS", "1")
        os.environ.setdefault("ARGOS_INTRA_THREADS", "1")  # the app shares its cores with Rasa
        os.environ.setdefault("ARGOS_COMPUTE_TYPE", "default")  # as stored (float32); tiny models
        _home, _pairs = home, None
        _cache.clear()
        if _argos is not None:
            _retarget(dirs["packages"])
        return home


def _retarget(packages: Path) -> None:
    settings = _argos.settings
    settings.package_data_dir = packages
    settings.package_dirs = [packages]
    _forget_loaded()


def _forget_loaded() -> None:
    """Drop argostranslate's per-pair translators so new or replaced packages are picked up."""
    _argos.translate.get_installed_languages.cache_clear()
    _argos.translate.installed_translates.clear()


def _prepare_spacy_fallback(cache_home: Path) -> None:
    """argostranslate (SPACY chunking) downloads xx_sent_ud_sm at import unless its cache dir exists.

    Put a blank multilingual pipeline there instead: no download, and a package without its own
    spacy/ dir still gets rule-based sentence splitting.
    """
    cache = cache_home / "argos-translate" / "spacy"
    if (cache / "senter" / "model").exists():
        return
    import spacy

    cache.mkdir(parents=True, exist_ok=True)
    spacy.blank("xx").to_disk(cache)
    (cache / "senter" / "model").mkdir(parents=True, exist_ok=True)  # the marker argostranslate checks


def _load() -> SimpleNamespace:
    """Import argostranslate once, with crossdesk's directories (the costly part: torch, spaCy)."""
    global _argos
    with _lock:
        if _argos is not None:
            return _argos
        dirs = _dirs(configure(_home))
        _prepare_spacy_fallback(dirs["XDG_CACHE_HOME"])
        saved = {k: os.environ.get(k) for k in _XDG}
        os.environ.update({k: str(dirs[k]) for k in _XDG})
        try:
            import argostranslate.package
            import argostranslate.settings
            import argostranslate.translate
        finally:  # argostranslate has read them; don't redirect other libraries' XDG dirs
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        _argos = SimpleNamespace(package=argostranslate.package, settings=argostranslate.settings,
                                 translate=argostranslate.translate)
        if Path(_argos.settings.package_data_dir).resolve() != dirs["packages"]:
            _retarget(dirs["packages"])  # imported earlier by someone else
        return _argos


def warm() -> set[tuple[str, str]]:
    """Pay the import and model-load cost now (e.g. at app start-up) instead of on the first message."""
    argos = _load()
    pairs = installed_pairs()
    with _lock:
        for src, tgt in sorted(pairs):
            try:
                argos.translate.get_translation_from_codes(src, tgt).translate("ok")
            except Exception:  # noqa: BLE001 - a broken package shows up as ok=False later, with the reason
                log.exception("translation: could not load %s->%s", src, tgt)
    return pairs


# ---------------------------------------------------------------------------------------- packages
def _check_package_file(path: Path) -> tuple[str, dict]:
    """Validate an .argosmodel before anything is extracted; returns (top directory, metadata)."""
    if not path.is_file():
        raise PackageError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise PackageError(f"{path.name}: not an Argos package (not a zip archive); rebuild or re-copy it")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise PackageError(f"{path.name}: corrupted archive (checksum mismatch in {bad})")
            names = zf.namelist()
            tops = {PurePosixPath(n).parts[0] for n in names if n.strip("/")}
            if any(n.startswith("/") or ".." in PurePosixPath(n).parts for n in names) or len(tops) != 1:
                raise PackageError(f"{path.name}: expected exactly one top-level package directory")
            top = tops.pop()
            for required in ("metadata.json", "model/model.bin"):
                if f"{top}/{required}" not in names:
                    raise PackageError(f"{path.name}: incomplete package, {required} is missing")
            if f"{top}/sentencepiece.model" not in names and f"{top}/bpe.model" not in names:
                raise PackageError(f"{path.name}: incomplete package, no sentencepiece.model or bpe.model")
            metadata = json.loads(zf.read(f"{top}/metadata.json"))
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, PackageError):
            raise
        raise PackageError(f"{path.name}: corrupted package ({type(exc).__name__}: {exc})") from exc
    if not isinstance(metadata, dict) or not all(isinstance(metadata.get(k), str) for k in ("from_code", "to_code")):
        raise PackageError(f"{path.name}: metadata.json lacks from_code/to_code")
    if metadata.get("type", "translate") != "translate":
        raise PackageError(f"{path.name}: not a translation package (type {metadata.get('type')!r})")
    return top, metadata


def install(paths: Iterable[Path]) -> list[str]:
    """Install .argosmodel files (all validated first, so a bad one installs nothing); returns "sv-en"…"""
    global _pairs
    checked = [(Path(p), *_check_package_file(Path(p))) for p in paths]
    argos = _load()
    installed = []
    with _lock:
        for path, _top, meta in checked:
            try:
                argos.package.install_from_path(path)
            except Exception as exc:  # noqa: BLE001 - surface as a clear install error
                raise PackageError(f"{path.name}: install failed ({type(exc).__name__}: {exc})") from exc
            installed.append(f"{meta['from_code']}-{meta['to_code']}")
        _forget_loaded()
        _pairs = None
        _cache.clear()
    return installed


def installed_pairs() -> set[tuple[str, str]]:
    """Direct (from, to) pairs of the installed packages. Reads metadata only: no argostranslate import."""
    global _pairs
    with _lock:
        if _pairs is None:
            packages = _dirs(configure(_home))["packages"]
            pairs = set()
            for meta_file in packages.glob("*/metadata.json"):
                try:
                    meta = json.loads(meta_file.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    log.warning("translation: unreadable %s", meta_file)
                    continue
                if meta.get("type", "translate") == "translate":
                    pairs.add((meta.get("from_code"), meta.get("to_code")))
            _pairs = pairs
        return set(_pairs)


def _code(language: str) -> str:
    return re.split(r"[-_]", (language or "").strip().lower(), maxsplit=1)[0]


def _route(src: str, tgt: str) -> tuple[str, ...] | None:
    pairs = installed_pairs()
    if (src, tgt) in pairs:
        return (src, tgt)
    if PIVOT not in (src, tgt) and (src, PIVOT) in pairs and (PIVOT, tgt) in pairs:
        return (src, PIVOT, tgt)
    return None


def can_translate(src: str, tgt: str) -> bool:
    """True if an installed package translates src to tgt directly or through English."""
    src, tgt = _code(src), _code(tgt)
    return src == tgt or _route(src, tgt) is not None


# ------------------------------------------------------------------------------------- translation
@lru_cache(maxsize=1)
def default_glossary() -> tuple[str, ...]:
    """data/translation/glossary.txt: brands, carriers and payment names that are never translated."""
    return load_glossary()


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _translate_leg(src: str, tgt: str, text: str) -> str:
    argos = _load()
    translation = argos.translate.get_translation_from_codes(src, tgt)
    if translation is None:
        raise LookupError(f"argostranslate has no {src}->{tgt} translation")
    return translation.translate(text)


def translate(text: str, src: str, tgt: str, glossary: Iterable[str] = ()) -> Translation:
    """Translate shopper or agent text; never raises. ``ok=False`` → ``text`` is the original."""
    src, tgt = _code(src), _code(tgt)
    glossary = tuple(glossary)
    if not text or not text.strip() or src == tgt:
        return Translation(text, True, (src,))
    key = (text, src, tgt, glossary)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    try:
        route = _route(src, tgt)
    except Exception as exc:  # noqa: BLE001 - e.g. unreadable state dir
        return Translation(text, False, (src, tgt), f"translation unavailable: {exc}")
    if route is None:
        return Translation(text, False, (src, tgt), f"no installed translation {src}->{tgt} (direct or via {PIVOT})")
    protected = protect(text, default_glossary() + glossary)
    if len(protected.spans) > MAX_PLACEHOLDERS:
        return Translation(text, False, route, f"too many protected spans ({len(protected.spans)})")
    body = protected.text.strip()
    lead = protected.text[: len(protected.text) - len(protected.text.lstrip())]
    trail = protected.text[len(protected.text.rstrip()):]
    if not has_words(body):  # only order numbers, emails, amounts…: nothing to translate
        result = Translation(text, True, route)
    else:
        try:
            with _lock:
                for a, b in zip(route, route[1:]):
                    body = _translate_leg(a, b, body)
                    problem = check_placeholders(body, len(protected.spans))
                    if problem:
                        log.info("translation %s->%s rejected: %s", a, b, problem)
                        return Translation(text, False, route, f"{a}->{b}: {problem}")
        except Exception as exc:  # noqa: BLE001 - argostranslate/CTranslate2 errors must not reach the chat
            log.warning("translation %s failed", "->".join(route), exc_info=True)
            return Translation(text, False, route, f"argostranslate failed: {type(exc).__name__}: {exc}")
        result = Translation(lead + restore(body, protected.spans) + trail, True, route)
    with _lock:
        _cache[key] = result
        if len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def translate_template(template: str, src: str, tgt: str, glossary: Iterable[str] = ()) -> Translation:
    """Translate a catalog string with ``{{ name }}`` placeholders; the result renders with the same names."""
    result = translate(template, src, tgt, glossary)
    if result.ok and sorted(_JINJA.findall(result.text)) != sorted(_JINJA.findall(template)):
        return Translation(template, False, result.route, "template placeholders changed")  # defensive
    return result
