"""What every provider's endpoint shares, so that clients and monitors see one API
whatever serves it: request parsing and response shapes (`parsing`), the request and
feedback logs monitors read (`reqlog`, read back by `traffic`), per-variant request
outcomes (`stats`) and Prometheus metrics (`metrics`), and the judging of a rollout
step against the endpoint's `rollback` bounds (`judging`).

Pure code: no server, no platform. A provider's server (the local provider's
uvicorn process, the ray provider's Serve router) calls it.
"""
