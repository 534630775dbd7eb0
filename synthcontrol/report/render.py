"""Markdown and HTML from the report templates (jinja2): the content is written once,
in ``templates/content.j2`` and ``templates/sections/``, and rendered with the block
macros of each format."""

from __future__ import annotations

import re
from functools import lru_cache

import jinja2
from markupsafe import Markup

from .formats import num, p, slug, span
from .view import ReportView

__all__ = ["render_markdown", "render_html"]

_NUMERIC = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?$")


def _squash(text: str) -> str:
    """Whitespace runs (the templates' line breaks) as single spaces."""
    squashed = " ".join(str(text).split())
    return Markup(squashed) if isinstance(text, Markup) else squashed


def _sentence(text: str) -> str:
    """``text`` with its first letter in upper case (the rest unchanged)."""
    return text[:1].upper() + text[1:]


def _cell(value: object) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


@lru_cache(maxsize=2)
def _environment(html: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("synthcontrol.report", "templates"),
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.do"],
    )
    env.filters.update(squash=_squash, cell=_cell, num=num, p=p, slug=slug, span=span, sentence=_sentence)
    env.tests["numeric_text"] = lambda value: bool(_NUMERIC.match(str(value)))
    return env


def _content(view: ReportView, html: bool) -> str:
    env = _environment(html)
    blocks = env.get_template("blocks.html.j2" if html else "blocks.md.j2").module
    return env.get_template("content.j2").render(view=view, study=view.study, b=blocks)


def render_markdown(view: ReportView) -> str:
    """The report as Markdown."""
    text = _content(view, html=False)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render_html(view: ReportView) -> str:
    """The report as a standalone HTML page with a table of contents."""
    content = Markup(_content(view, html=True))
    page = _environment(True).get_template("page.html.j2")
    return page.render(title=view.study.config.title, sections=view.sections, content=content)
