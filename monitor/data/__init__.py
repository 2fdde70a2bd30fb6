"""Reference tables shipped with the package."""
