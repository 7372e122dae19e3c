"""Reusing freed host memory, so that a training step on the CPU does not
pay for fresh pages at every step.

On the CPU, jax and tensorflow (XLA) and torch take each step's temporary
buffers (the gradients, intermediate values, copies) from the C library's
``malloc`` and free them when the step ends. glibc serves a large request
with newly mapped pages and unmaps them on ``free``, so the next step maps
them again: the kernel then zero-fills every 4 KiB page at its first touch
(a page fault). A step of ``n`` float32 parameters with one gradient-sized
temporary faults about ``n / 1024`` times per step, which for an optimizer
step that is bound by memory traffic can cost more than the step itself.

``retain()`` sets three glibc options (``mallopt``) for the whole
process: ``M_MMAP_MAX = 0`` (every allocation comes from malloc's heap,
none is mapped on its own), ``M_TRIM_THRESHOLD`` at its maximum (freed
memory is kept for reuse instead of being returned to the system) and
``M_ARENA_MAX = 1`` (threads that first allocate from now on share the
main heap: a block freed in one thread's separate heap can otherwise take
that whole heap back to the system, and the buffers of one step come
from several threads). After the first steps, most steps reuse the same
pages; a step now and then still maps new ones.

The cost: the process keeps its peak memory until it exits (freed memory is
reused by the process, not given back), and the setting applies to every
library in the process, R included when lionr runs inside R. It cannot be
undone, since glibc does not restore its adaptive defaults. It is never set
unless asked for.
"""

import ctypes
import sys

# mallopt parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
_MAX_INT = 2**31 - 1

_done = False


def _glibc():
    """The running glibc as a ``ctypes`` library, or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version  # only glibc has it
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    return libc if version() else None


def retain():
    """Keep freed memory in this process for reuse, from now on.

    Call it early, before the backend starts its threads, so that they
    share the main heap.

    Returns True when the setting is in effect (glibc on Linux; calling
    again changes nothing), False where it is not available (another C
    library or system), in which case nothing was changed.
    """
    global _done
    if _done:
        return True
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not libc.mallopt(M_MMAP_MAX, 0):
        return False
    libc.mallopt(M_TRIM_THRESHOLD, _MAX_INT)
    libc.mallopt(M_ARENA_MAX, 1)
    _done = True
    return True
