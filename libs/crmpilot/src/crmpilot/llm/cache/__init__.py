"""Response caches: the port and its in-memory and PostgreSQL implementations."""

from crmpilot.llm.cache.base import CachedAnswer, CacheKey, ResponseCache
from crmpilot.llm.cache.memory import MemoryCache
from crmpilot.llm.cache.postgres import PostgresCache

__all__ = ["CacheKey", "CachedAnswer", "ResponseCache", "MemoryCache", "PostgresCache"]
