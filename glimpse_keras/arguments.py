"""Checks of constructor and function arguments, with one message format:

    `num_workers` must be a positive int, received num_workers=0.

Used by the layers, the models and the export (no framework is imported, so
the model code stays backend-neutral). Each check returns the value (as
float for numbers) so it can be assigned in one line, and raises `error`
(default ValueError; a module passes its own error class).
"""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(name, value, *, minimum=1, allow_none=False, error=ValueError):
    """Checks that `value` is an int >= `minimum` (bools are refused), or
    None when `allow_none`.

    Returns:
        `value`.

    Raises:
        `error`: naming the argument and the value received.
    """
    if value is None and allow_none:
        return value
    if not _is_int(value) or value < minimum:
        wanted = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        if allow_none:
            wanted += " or None"
        raise error(f"`{name}` must be {wanted}, received {name}={value!r}.")
    return value


def check_number(name, value, *, minimum=None, maximum=None, above_minimum=False, error=ValueError):
    """Checks that `value` is an int or float (bools are refused) within
    [minimum, maximum], or (minimum, maximum] when `above_minimum`.

    Returns:
        `float(value)`.

    Raises:
        `error`: naming the argument, the range and the value received.
    """
    valid = _is_number(value)
    if valid and minimum is not None:
        valid = value > minimum if above_minimum else value >= minimum
    if valid and maximum is not None:
        valid = value <= maximum
    if not valid:
        if minimum is not None and maximum is not None:
            wanted = f"in {'(' if above_minimum else '['}{minimum}, {maximum}]"
        elif minimum is not None:
            wanted = f"a number {'>' if above_minimum else '>='} {minimum}"
            if minimum == 0 and above_minimum:
                wanted = "a positive number"
        elif maximum is not None:
            wanted = f"a number <= {maximum}"
        else:
            wanted = "a number"
        raise error(f"`{name}` must be {wanted}, received {name}={value!r}.")
    return float(value)


def check_choice(name, value, choices, *, error=ValueError):
    """Checks that `value` is one of `choices`.

    Returns:
        `value`.

    Raises:
        `error`: naming the argument, the choices and the value received.
    """
    if value not in choices:
        raise error(f"`{name}` must be one of {tuple(choices)}, received {name}={value!r}.")
    return value


def at_least(minimum, kind=int):
    """An argparse `type` accepting a number (`kind`: int or float) >= `minimum`.

    argparse names the flag in its error and exits with code 2, e.g.
    "argument --max-trials: expected an integer >= 1, got 0".
    """
    wanted = f"{'an integer' if kind is int else 'a number'} >= {minimum}"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise _argument_type_error(f"expected {wanted}, got {text!r}") from None
        if value < minimum:
            raise _argument_type_error(f"expected {wanted}, got {text}")
        return value

    parse.__name__ = f"{kind.__name__} >= {minimum}"
    return parse


def _argument_type_error(message):
    import argparse

    return argparse.ArgumentTypeError(message)
