"""Everything that touches paths: landing files, the lake, quarantine, manifests."""
