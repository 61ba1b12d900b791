"""Feature views on this machine: their definition, offline table, point-in-time joins and
online store. The `feature_view` resource itself is `..feature_view`."""
