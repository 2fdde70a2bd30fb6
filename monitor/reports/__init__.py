"""What people read: the run summary, HTML pages, charts, the tune page, model card, household file.

Pure (charts are PNG bytes, pages are text). May import: ``monitor.tuning``
and below.
"""
