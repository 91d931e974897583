"""Alembic environment: runs against the engine `Database` hands over (no alembic.ini)."""

from alembic import context

from fnhub.record_search import include_name
from fnhub.store.all_models import metadata

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
