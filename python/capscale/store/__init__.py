"""The results store: an embedded, versioned SQLite database that every evaluation writes into.

Writes are transactional and idempotent (a re-run skips what is stored), so a study killed
at any point resumes with nothing lost or duplicated; readers return pandas DataFrames, and
:meth:`Store.export` writes Parquet or CSV. The schema is documented in
``docs/store-schema.md``; :mod:`capscale.store.schema` holds the DDL and the migrations.

>>> from capscale.store import open_store
>>> with open_store("results.db") as store:  # doctest: +SKIP
...     run = store.start_run("gpt2", "fp16", ("hellaswag", "1"), config={}, seed=0)
...     store.add_records(run, [{"item_id": "0", "scores": {"acc": 1.0}}])
...     store.finish_run(run)
...     print(store.runs())

Importing this package does not import pandas; the readers do, when called.
"""

from ._values import PRECISION_FORMATS
from .reader import EPISODE_SCORES, EXPORT_FORMATS, EXPORT_TABLES
from .schema import SCHEMA_VERSION, migrate_1_to_2, migrate_2_to_3
from .store import RUN_STATUSES, Store, open_store

__all__ = [
    "EPISODE_SCORES",
    "EXPORT_FORMATS",
    "EXPORT_TABLES",
    "PRECISION_FORMATS",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "Store",
    "migrate_1_to_2",
    "migrate_2_to_3",
    "open_store",
]
