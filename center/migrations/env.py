"""Alembic's environment for the center's schema: online migrations only, on the URL the center
passes in (`center.db.migrate`), under a PostgreSQL advisory lock so two processes starting at
once migrate one after the other."""

from alembic import context
from sqlalchemy import create_engine, text

LOCK = 0x63656E74  # "cent": the center's migration lock

url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
engine = create_engine(url)
with engine.connect() as connection:
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK})
    connection.commit()
    try:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK})
        connection.commit()
engine.dispose()
