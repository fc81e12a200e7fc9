"""Bounds on what one archive may hold, so a hostile one fails early with LimitExceeded."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_entries: int = 2_000_000
    max_file_size: int = 64 << 30
    # Bytes of the uncompressed tar stream, which bounds decompression bombs too.
    max_total_size: int = 256 << 30
    max_path_length: int = 4096
    # PAX and GNU long-name records are held in memory while parsed.
    max_header_size: int = 1 << 20


DEFAULT_LIMITS = Limits()
