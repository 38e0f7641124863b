"""Where a fix puts a new argument: after the existing ones, in their layout, comments left in place.

`append_items` adds Args (to a call) or ImportAliases (to `from X import ...`) the way the list is
already written: on one line (`f(a, b=1)`), or one item per line with the same indentation and
trailing comma. A comment stays on the item and the line it followed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import libcst as cst


def keyword_arg(name: str, value: str) -> cst.Arg:
    """`name=value` with no spaces around `=`; `value` is Python source."""
    return cst.Arg(
        value=cst.parse_expression(value),
        keyword=cst.Name(name),
        equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")),
    )


_Space = cst.BaseParenthesizableWhitespace


_Item = TypeVar("_Item", cst.Arg, cst.ImportAlias)


def append_items(
    items: list[_Item], new: Sequence[_Item], opening: _Space, after: _Space | None, unit: str
) -> tuple[list[_Item], _Space, _Space | None]:
    """Append Args/ImportAliases in the layout of the existing ones (one line, or one per line).

    `opening` is the whitespace after `(`, `after` the whitespace between the last item and `)`;
    both are returned, changed where needed. Comments stay on the item (and the line) they
    followed; new items get the separator of the existing ones, minus any comment, and the last
    one inherits the closing layout (trailing comma, paren indent, lines before the paren).
    """
    if not items:
        return _append_to_empty(new, opening, after, unit)
    inline = _inline()
    last = items[-1]
    trailing = last.comma if isinstance(last.comma, cst.Comma) else None
    if len(items) >= 2 and isinstance(items[-2].comma, cst.Comma):
        separator = _plain(items[-2].comma)
    elif isinstance(opening, cst.ParenthesizedWhitespace):  # one item, on its own line below `(`
        separator = _plain(cst.Comma(whitespace_after=opening))
    else:
        separator = inline
    spacing = separator.whitespace_after
    multiline = spacing if isinstance(spacing, cst.ParenthesizedWhitespace) else None  # items on their own lines
    new_last = new[-1]
    middle = [item.with_changes(comma=separator) for item in new[:-1]]
    if trailing is not None:
        closing = trailing.whitespace_after
        if multiline is not None and isinstance(closing, cst.ParenthesizedWhitespace):
            last = last.with_changes(
                comma=trailing.with_changes(
                    whitespace_after=closing.with_changes(last_line=multiline.last_line, empty_lines=())
                )
            )
            new_last = new_last.with_changes(
                comma=trailing.with_changes(whitespace_after=closing.with_changes(first_line=cst.TrailingWhitespace()))
            )
        else:
            last = last.with_changes(comma=separator)
            new_last = new_last.with_changes(comma=trailing)
    elif multiline is not None and isinstance(
        after, cst.ParenthesizedWhitespace
    ):  # `b=2  # note\n)`: the note stays on b
        last = last.with_changes(
            comma=separator.with_changes(
                whitespace_after=after.with_changes(last_line=multiline.last_line, empty_lines=())
            )
        )
        after = after.with_changes(first_line=cst.TrailingWhitespace())
    else:  # on one line, `f(a, b  # note\n)` included: the new items go between b and the note
        last = last.with_changes(comma=separator)
    return items[:-1] + [last] + middle + [new_last], opening, after


def _append_to_empty(
    new: Sequence[_Item], opening: _Space, after: _Space | None, unit: str
) -> tuple[list[_Item], _Space, _Space | None]:
    """`append_items` to `()`: on one line, or one item per line when a comment sits inside the parens."""
    if isinstance(opening, cst.ParenthesizedWhitespace):  # `f(  # note\n)` or `f(\n    # note\n)`
        indent = cst.SimpleWhitespace(_item_indent(opening, unit))
        line = cst.Comma(whitespace_after=cst.ParenthesizedWhitespace(indent=opening.indent, last_line=indent))
        close = cst.Comma(
            whitespace_after=cst.ParenthesizedWhitespace(indent=opening.indent, last_line=opening.last_line)
        )
        out = [item.with_changes(comma=line) for item in new[:-1]] + [new[-1].with_changes(comma=close)]
        return out, opening.with_changes(last_line=indent), after
    inline = _inline()
    return [item.with_changes(comma=inline) for item in new[:-1]] + [new[-1]], opening, after


def _inline() -> cst.Comma:
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _item_indent(opening: cst.ParenthesizedWhitespace, unit: str) -> str:
    """Indent for items below `(` in a call that has none: that of the comment lines there, else one unit."""
    for line in reversed(opening.empty_lines):
        if line.comment is not None:
            return line.whitespace.value
    return opening.last_line.value + unit


def _plain(comma: cst.Comma) -> cst.Comma:
    """A separator without the comment or blank lines that followed one particular item."""
    after = comma.whitespace_after
    if isinstance(after, cst.ParenthesizedWhitespace):
        return comma.with_changes(
            whitespace_after=after.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())
        )
    return comma
