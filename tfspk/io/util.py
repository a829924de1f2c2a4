"""Small helpers shared by the table readers and the back-end."""
import functools
import gc


def without_gc(function):
    """Run ``function`` with the cyclic garbage collector paused.

    Parsing a million-line trials or scores file creates millions of small lists and tuples; each
    allocation burst triggers collections that scan them all again, which made parsing 4-7 times
    slower. These objects hold no reference cycles, so nothing is lost by pausing the collector.
    """
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()
    return wrapper
