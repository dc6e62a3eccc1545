"""Search: ranked, typo-tolerant text search (SQLite FTS5 trigrams, PostgreSQL pg_trgm).

May use query, core, storage and errors. A registry opts in with the ``Searchable`` mixin; the
indexes themselves are created by migrations (``biolake.core.schema.search_index``).
"""

from biolake.search.searchable import Searchable

__all__ = ["Searchable"]
