"""Endpoints on Ray Serve: the router and variant deployments that run on the cluster
(`app`), the weighted split the router makes (`split`), the Serve applications an
endpoint is made of and the REST calls that deploy them (`apps`, `serve_api`), and the
stepped rollout the provider drives (`rollout`).

`app` is imported by Serve's replicas on the cluster; the rest runs in mlform.
"""
