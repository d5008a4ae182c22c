from services.matching.models import Base
from shared.db import run_async_migrations

run_async_migrations(Base.metadata)
