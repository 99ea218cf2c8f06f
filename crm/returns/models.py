"""Return policy per market, return authorisations (RMA) and refunds with their timeline."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import Base, UTCDateTime, utcnow

Money = Numeric(12, 2)

# Return (RMA) statuses
RMA_REQUESTED = "requested"
RMA_LABEL_ISSUED = "label_issued"
RMA_IN_TRANSIT = "in_transit"
RMA_RECEIVED = "received"
RMA_REFUNDED = "refunded"
RMA_REJECTED = "rejected"
OPEN_RMA_STATUSES = (RMA_REQUESTED, RMA_LABEL_ISSUED, RMA_IN_TRANSIT, RMA_RECEIVED)

# Refund statuses, in order
REFUND_PENDING = "pending"  # waiting for the returned parcel
REFUND_INITIATED = "initiated"
REFUND_PROCESSED = "processed"  # sent to the payment provider
REFUND_COMPLETED = "completed"  # provider confirms funds released
REFUND_FAILED = "failed"


class ReturnPolicy(Base):
    __tablename__ = "return_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    market: Mapped[str] = mapped_column(String(2), unique=True)
    window_days: Mapped[int]  # counted from delivery; EU markets >= 14 by law
    final_sale_returnable: Mapped[bool] = mapped_column(default=False)
    return_shipping_paid_by: Mapped[str] = mapped_column(String(16))  # "shop" | "customer"
    return_shipping_fee: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))  # deducted if customer pays
    refund_methods: Mapped[list] = mapped_column(JSON, default=list)  # e.g. ["original_payment", "store_credit"]
    return_address: Mapped[str] = mapped_column(String(300))


class ReturnRequest(Base):
    __tablename__ = "returns"

    id: Mapped[int] = mapped_column(primary_key=True)
    rma_number: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=RMA_REQUESTED)
    reason: Mapped[str] = mapped_column(String(500))
    label_url: Mapped[str | None] = mapped_column(String(500))
    refund_amount: Mapped[Decimal] = mapped_column(Money)
    refund_currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list[ReturnItem]] = relationship(back_populates="return_request", cascade="all, delete-orphan")
    order = relationship("Order")
    refund = relationship("Refund", back_populates="return_request", uselist=False)


class ReturnItem(Base):
    __tablename__ = "return_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("returns.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    qty: Mapped[int]

    return_request: Mapped[ReturnRequest] = relationship(back_populates="items")
    order_line = relationship("OrderLine")


class Refund(Base):
    """Money going back to the shopper, from a return or a cancellation."""

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    return_id: Mapped[int | None] = mapped_column(ForeignKey("returns.id", ondelete="SET NULL"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(32), default="original_payment")
    status: Mapped[str] = mapped_column(String(16), default=REFUND_PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    return_request = relationship("ReturnRequest", back_populates="refund")
    events: Mapped[list[RefundEvent]] = relationship(
        back_populates="refund", cascade="all, delete-orphan", order_by="RefundEvent.occurred_at"
    )


class RefundEvent(Base):
    __tablename__ = "refund_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refunds.id", ondelete="CASCADE"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(300), default="")

    refund: Mapped[Refund] = relationship(back_populates="events")
