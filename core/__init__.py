"""What every process shares: settings, Redis key names, wire messages, records, logging."""
