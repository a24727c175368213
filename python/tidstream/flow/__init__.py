"""The operators the dataflows compose (ingest step, export sink). With ``tidstream.nats``
the only place that imports bytewax."""
