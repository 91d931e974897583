"""Console accounts: users with argon2 password hashes, roles, sessions and sign-in throttling.

API keys (`fnhub.server.auth`) carry a role too; `fnhub.server.access` turns either into the
caller's `Principal` on every `/api/v1` request.
"""
