"""Renamed public names keep working for at least one minor version, with a warning naming the new name."""
from __future__ import annotations

import warnings


def renamed_method(new: str, old: str, since: str):
    """A method ``old`` that warns (:class:`DeprecationWarning`) and calls ``new`` of the same object.

    Examples
    --------
    >>> class Combination:
    ...     def verdicts(self): ...
    ...     expected = renamed_method("verdicts", "expected", since="0.1")
    """

    def alias(self, *args, **kwargs):
        warnings.warn(f"{type(self).__name__}.{old}() is deprecated since {since}: use {type(self).__name__}.{new}()",
                      DeprecationWarning, stacklevel=2)
        return getattr(self, new)(*args, **kwargs)

    alias.__name__ = old
    alias.__doc__ = f"Deprecated since {since}: renamed :meth:`{new}`."
    alias.deprecated_for = new
    return alias
