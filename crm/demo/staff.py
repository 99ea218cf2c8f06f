"""The demo database's staff: one admin and two agents, with random passwords (nothing like this exists
outside the demo seed; a real deployment adds its staff with ``crm.staff.service.add_user``)."""
from __future__ import annotations

import secrets

from sqlalchemy.orm import Session

from crm.audit.service import Actor
from crm.staff import service as staff

# (email, name, role, languages)
DEMO_STAFF = (("admin@demo.crossdesk.test", "Demo Admin", "admin", ["en", "de"]),
              ("agent1@demo.crossdesk.test", "Ana Agent", "agent", ["en", "es", "pt"]),
              ("agent2@demo.crossdesk.test", "Kenji Agent", "agent", ["en", "ja", "zh"]))


def seed_demo_staff(session: Session) -> list[tuple[str, str, str]]:
    """Add the demo staff with fresh random passwords to a database without staff; returns their
    (role, email, password), to be shown once. Empty when the database already has staff (nothing changes).
    The caller commits."""
    if staff.has_users(session):
        return []
    logins = []
    for email, name, role, languages in DEMO_STAFF:
        password = secrets.token_urlsafe(12)
        staff.add_user(session, Actor.cli(), email, name, role, password, languages)
        logins.append((role, email, password))
    return logins
