"""Cost in the plan: what each changed resource on a cloud provider would cost, from
dated list-price tables kept in this folder (`aws.json`, `gcp.json`, `azure.json`),
overridable per organisation. Nothing here reaches the network."""
