"""Online serving for the local provider: one detached HTTP server per endpoint.

The handler (`handler.EndpointHandler`) starts, changes and stops servers; the
server process (`server`) runs the web app (`app`) on uvicorn. They share only
the serving config (`config.ServingConfig`), passed over the server's control
routes, and the files in the endpoint's directory.
"""
