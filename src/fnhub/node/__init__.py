"""JavaScript functions: locating Node, validating scripts, running them in a Node process per
worker child, and the project's npm packages (docs/node.md)."""
