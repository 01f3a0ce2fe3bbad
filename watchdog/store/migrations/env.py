"""Alembic environment: the engine comes from `watchdog.store.db`, never from an ini file.

`watchdog.store.db` passes the connection that holds the migration lock (SQLite's write lock or
a PostgreSQL advisory lock), already in a transaction it commits itself; without one, the
migrations run in a transaction of their own.
"""

from alembic import context

from watchdog.store.schema import metadata


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    with context.config.attributes["engine"].begin() as connection:
        run(connection)
