"""From hits to lists: a county's evaluation, the warning lifecycle, delivery health, referrals.

Each county's facts, hits and scores; warning ids, 新增/持续 and closing by
the run or by the township's answers; which sources are held or stale and
what that keeps open; the referral rows and visit rosters; the township
workbook and its receipt.

Pure. May import: ``monitor.model`` and below.
"""
