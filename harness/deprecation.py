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


def replaced_property(old: str, new: str, since: str, get):
    """A read-only property ``old`` that warns (:class:`DeprecationWarning`) and returns ``get(self)``, the
    value ``new`` (a call or attribute named in the warning) gives.

    Examples
    --------
    >>> class Frontend:
    ...     correct = True
    ...     def expected_at(self, stage): return "pass" if self.correct else "detect"
    ...     expected = replaced_property("expected", "expected_at(stage)", "0.1", lambda self: self.expected_at(None))
    """

    def getter(self):
        warnings.warn(f"{type(self).__name__}.{old} is deprecated since {since}: use {type(self).__name__}.{new}",
                      DeprecationWarning, stacklevel=2)
        return get(self)

    getter.__name__ = old
    getter.__doc__ = f"Deprecated since {since}: use :meth:`{new.partition('(')[0]}`."
    return property(getter)
