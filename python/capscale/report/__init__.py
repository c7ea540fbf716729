"""Reports of a study: an HTML page with the results store's tables and the law fits' figures."""

from .html import build_report

__all__ = ["build_report"]
