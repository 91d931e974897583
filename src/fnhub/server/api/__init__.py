"""The admin API under `/api/v1`: one router per resource, all behind `require_admin`."""
