"""The `gateway` resource on this machine: a reverse proxy in front of endpoints on
any providers (`proxy`), its routing file (`routes`), run and supervised like an
endpoint's server (`..serving.process`), and the handler that moves its traffic
(`handler`)."""
