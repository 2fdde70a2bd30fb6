"""Who may read what the system writes: by default the owner alone (folders 0700, files 0600).

The lake, the quarantine, the outputs and the models hold personal data
(health, disability, minors: PIPL art. 28), so every file the system creates
is readable by the account that runs it and no one else, unless the operator
sets ``MONITOR_UMASK`` (an octal umask, e.g. ``027`` to let the account's
group read). This is done with the process umask, so every writer (pandas,
pyarrow, shutil) follows it. Files that exist already keep their modes.
"""

from __future__ import annotations

import os

#: Owner only: nothing for the group or others.
PRIVATE_UMASK = 0o077
UMASK_VARIABLE = "MONITOR_UMASK"
#: Every permission bit: the largest umask.
ALL_BITS = 0o777


class PermissionSettingError(ValueError):
    """``MONITOR_UMASK`` is not an octal umask."""


def configured_umask() -> int:
    """The umask the operator asked for, or :data:`PRIVATE_UMASK`.

    Examples
    --------
    >>> os.environ.pop(UMASK_VARIABLE, None) and None
    >>> oct(configured_umask())
    '0o77'
    """
    text = os.environ.get(UMASK_VARIABLE, "").strip()
    if not text:
        return PRIVATE_UMASK
    try:
        value = int(text, 8)
    except ValueError:
        raise PermissionSettingError(f"{UMASK_VARIABLE}={text!r} is not an octal umask "
                                     "such as 077 or 027") from None
    if not 0 <= value <= ALL_BITS:
        raise PermissionSettingError(f"{UMASK_VARIABLE}={text!r} is out of range 000–777")
    return value


def keep_private() -> int:
    """Set the process umask to the configured one; return the one it replaces."""
    return os.umask(configured_umask())
