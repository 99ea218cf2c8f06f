"""Every text key the actions use exists in the English catalog, and every catalog renders."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm.i18n import catalog as catalog_module
from crm.i18n.catalog import LOCALES_DIR, Texts, catalog

ACTIONS_DIR = Path(__file__).resolve().parent.parent / "actions"
KEY_CALL = re.compile(r"""\bt(?:exts)?\(\s*f?["']([a-z_.{}]+)["']""")


def used_keys() -> set[str]:
    keys = set()
    for path in [*ACTIONS_DIR.glob("*.py"), Path(catalog_module.__file__)]:  # the actions and refund_method
        keys |= set(KEY_CALL.findall(path.read_text()))
    return keys


def flatten(data, prefix=""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_every_used_key_exists():
    keys = {k for k, _ in flatten(catalog("en"))}
    used = used_keys()
    assert len(used) > 40  # the regex really finds the calls
    for key in used:
        if "{" in key:  # f-string key such as status.{...}: its prefix must be a section
            assert any(k.startswith(key.split("{")[0]) for k in keys), key
        else:
            assert key in keys, f"missing catalog key {key!r}"


def test_yaml_booleans_do_not_hide_keys():
    # YAML 1.1 turns keys like yes/no/on/off into booleans; every key must stay a string.
    for path in LOCALES_DIR.glob("*.yml"):
        for key, _ in flatten(catalog(path.stem)):
            assert all(part not in ("True", "False") for part in key.split(".")), (path.name, key)


@pytest.mark.parametrize("language", sorted(p.stem for p in LOCALES_DIR.glob("*.yml")))
def test_templates_render(language):
    t = Texts(language)
    for key, value in flatten(catalog(language)):
        if isinstance(value, str):
            names = set(re.findall(r"{{\s*(\w+)\s*}}", value))
            assert t(key, **{n: "X" for n in names})
