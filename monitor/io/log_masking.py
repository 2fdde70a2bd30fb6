"""Log records with id and phone numbers masked, in every process that runs the system's code.

The one place a process's logging is changed: the command line installs it
first thing, and the flows' module on import, so that a Dask worker (which
imports the flows to run the county tasks) masks its records too.
"""

from __future__ import annotations

import logging


def log_records_without_full_numbers() -> None:
    """Every log record of the process (Prefect's run logs too) with id and phone numbers masked.

    A task's failure is logged with its exception's message, which may quote
    what a department sent; the message is masked when the record is made,
    before any handler (the console, the Prefect API) sees it. Installed
    once per process, however often asked: by the command line, and by the
    flows' module on import, so in a Dask worker process too.
    """
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "masks_numbers", False):
        return

    def masked_record(*args: object, **kwargs: object) -> logging.LogRecord:
        # Imported at the first record, not at start-up (pandas comes with it).
        from monitor.validation.idcard import mask_numbers_in_line

        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return record
        masked = mask_numbers_in_line(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return record

    masked_record.masks_numbers = True
    logging.setLogRecordFactory(masked_record)
