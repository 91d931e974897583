"""Env variables (`fnhub.env`) and the key-value store (`fnhub.store`) that scripts read.

Env variables are typed settings kept in the database (passwords sealed at rest), managed by
the API (`/api/v1/envs`), the CLI (`fnhub env`) and `fnhub.yaml` (`envs:`), and cached in each
worker process until their revision moves. The store is a database table of JSON values per
script (or shared scope), with expiry. `feature.ENVS` hands both to the whole.
"""
