"""The HTTP server: API, endpoints, operations, and the home of in-server background services."""
