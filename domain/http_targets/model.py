"""A tenant's settings for its ``http`` jobs."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.model.base import Base, Document
from domain.webhooks.model import secrets_in_use


class TargetSettings(Base):
    __tablename__ = "http_target_settings"

    tenant_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    secret_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_secret_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_secret_until: Mapped[datetime | None]
    # Hosts (names or addresses, lower case) this tenant's jobs may reach on private,
    # loopback and link-local addresses; every public host is reachable without a listing.
    allowed_hosts: Mapped[list[str]] = mapped_column(Document, default=list)
    updated_at: Mapped[datetime]

    def rotate(self, new_ciphertext: str, now: datetime, overlap: timedelta) -> None:
        """The new secret signs from now on; the old one beside it for ``overlap``."""
        if self.secret_ciphertext is not None:
            self.previous_secret_ciphertext = self.secret_ciphertext
            self.previous_secret_until = now + overlap
        self.secret_ciphertext = new_ciphertext
        self.updated_at = now

    def secrets_in_use(self, now: datetime) -> list[str]:
        if self.secret_ciphertext is None:
            return []
        return secrets_in_use(
            self.secret_ciphertext,
            self.previous_secret_ciphertext,
            self.previous_secret_until,
            now,
        )
