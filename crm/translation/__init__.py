"""Offline machine translation (argostranslate) for languages crossdesk does not speak natively.

Import is cheap: argostranslate (and torch) load lazily on first translation or :func:`warm`.
"""
from crm.translation.service import (PackageError, Translation, can_translate, clear_cache, configure,
                                     default_home, install, installed_pairs, translate, translate_template,
                                     warm)

__all__ = ["PackageError", "Translation", "can_translate", "clear_cache", "configure", "default_home", "install",
           "installed_pairs", "translate", "translate_template", "warm"]
