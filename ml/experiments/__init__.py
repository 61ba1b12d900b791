"""A/B experiments between an endpoint's variants: sticky assignment of requests by a
key, and the statistics that say whether one variant is better (see `verdict`)."""
