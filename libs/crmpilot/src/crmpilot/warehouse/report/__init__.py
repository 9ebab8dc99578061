"""The BI dashboard: figures read from the warehouse's ``bi`` views, rendered as one offline HTML page.

``crmpilot report`` calls :func:`load_figures` then :func:`render_html` (or
prints :meth:`Figures.to_json`).
"""

from .figures import Figures
from .html import render_html
from .queries import load_figures

__all__ = ["Figures", "load_figures", "render_html"]
