"""Images to bottleneck records: listing and splits, schema, writers, readers."""
