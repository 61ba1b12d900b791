"""Moves: carrying a resource's content to another provider instead of re-creating it.

`verbs` holds the request and response types of the provider verbs `export` and
`import_`; the bundle they exchange is `mlform.ml.bundle`. The planner decides a
move (`decide`), the applier carries it out (`run`).
"""
