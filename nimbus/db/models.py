"""What every service's SQLAlchemy models share: column types and a base.

Each owner of tables declares its models in its own package, on a
declarative base of its own (one ``MetaData`` per migration branch): the
identity service in :mod:`nimbus.identity.models`, the image service in
:mod:`nimbus.image.models`, a SQL-backed driver beside the driver.
"""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

__all__ = ["ID", "TIMESTAMP", "TYPE_MAP", "utcnow"]

ID = sa.String(64)
#: Microsecond timestamps everywhere (MySQL's DATETIME keeps whole seconds by default).
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def utcnow() -> datetime.datetime:
    """Return the current UTC time, naive, as the database stores it."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


#: The declarative type map every base uses: JSON for ``dict`` attributes,
#: microsecond timestamps for ``datetime`` ones.
TYPE_MAP: dict[Any, Any] = {dict[str, Any]: sa.JSON, datetime.datetime: TIMESTAMP}
