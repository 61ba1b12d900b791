"""Providers shipped with mlform; each realises the portable resource types somewhere."""
