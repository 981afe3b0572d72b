"""Media workers: host calls over aiortc, relay tracks, record, capture scans."""
