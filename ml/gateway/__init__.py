"""What every provider's gateway shares: the parity check before a cutover (`parity`)
and the stepping of traffic from one endpoint to another with failback (`cutover`).

Pure code: a provider's gateway (the local reverse proxy, Route 53 weighted records)
supplies the calls to its endpoints and the setting of its weights.
"""
