"""An operator's tools that run against a stage: drift, replay-dlq, reindex, cleanup, smoke, releases."""
