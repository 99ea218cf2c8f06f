"""Parcels and their carrier event timeline, including cross-border customs milestones."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import Base, UTCDateTime

# Event / status codes in the order a cross-border parcel normally passes them.
LABEL_CREATED = "label_created"
PICKED_UP = "picked_up"
EXPORT_CUSTOMS = "export_customs"
INTERNATIONAL_TRANSIT = "international_transit"
IMPORT_CUSTOMS = "import_customs"
DUTIES_DUE = "duties_due"  # held at import until the recipient pays duties/taxes
HANDED_TO_LAST_MILE = "handed_to_last_mile"
OUT_FOR_DELIVERY = "out_for_delivery"
DELIVERED = "delivered"
EXCEPTION = "exception"  # delivery failed, damaged, address problem, ...
RETURNED_TO_SENDER = "returned_to_sender"

MILESTONES = (
    LABEL_CREATED,
    PICKED_UP,
    EXPORT_CUSTOMS,
    INTERNATIONAL_TRANSIT,
    IMPORT_CUSTOMS,
    HANDED_TO_LAST_MILE,
    OUT_FOR_DELIVERY,
    DELIVERED,
)
ALL_CODES = MILESTONES + (DUTIES_DUE, EXCEPTION, RETURNED_TO_SENDER)


class Shipment(Base):
    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    carrier: Mapped[str] = mapped_column(String(64))
    last_mile_carrier: Mapped[str | None] = mapped_column(String(64))
    tracking_number: Mapped[str] = mapped_column(String(64), unique=True)
    tracking_url: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(32))  # code of the latest event
    origin_country: Mapped[str] = mapped_column(String(2))
    destination_country: Mapped[str] = mapped_column(String(2))
    estimated_delivery: Mapped[date | None] = mapped_column(Date)
    duties_amount: Mapped[str | None] = mapped_column(String(32))  # decimal string in order currency
    duties_payment_url: Mapped[str | None] = mapped_column(String(500))

    order = relationship("Order", back_populates="shipments")
    events: Mapped[list[ShipmentEvent]] = relationship(
        back_populates="shipment", cascade="all, delete-orphan", order_by="ShipmentEvent.occurred_at"
    )


class ShipmentEvent(Base):
    __tablename__ = "shipment_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    code: Mapped[str] = mapped_column(String(32))
    location: Mapped[str] = mapped_column(String(200))
    location_tz: Mapped[str] = mapped_column(String(64), default="UTC")  # to show the place's local time
    description: Mapped[str] = mapped_column(String(500), default="")

    shipment: Mapped[Shipment] = relationship(back_populates="events")
