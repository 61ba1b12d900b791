"""Monitor evaluation, the same on every provider: drift statistics (`stats`), model
quality on labelled traffic (`performance`), one evaluation of a window of traffic
against a reference dataset (`evaluate`, over a `Traffic` table), the outcome a
provider records and raises from it (`outcome`) and its report for people (`report`).

A provider only reads its platform's logs into a `Traffic` and stores what comes back.
"""
