"""User-facing errors: each names the problem and the fix; `run.py` prints them and exits 2."""


class EmbinitError(Exception):
    """An error the user can act on (bad config, bad data, bad file). Never a bug."""


class ConfigError(EmbinitError):
    """An invalid or inconsistent configuration."""


class DataError(EmbinitError):
    """A corpus or input file that cannot be used."""


class CacheError(EmbinitError):
    """A cache entry that is missing, partial or fails its content check."""
