"""Exports of a stack's live resources to other infrastructure-as-code tools.

A provider describes what its state entries are on its platform as plain data
(`declarations`); the engine renders that data as another tool's program (`pulumi`).
Nothing here imports the other tool: the rendered program does.
"""
