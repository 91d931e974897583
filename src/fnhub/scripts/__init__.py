"""Scripts: publishing immutable versions, and loading them (cached per version) in workers."""
