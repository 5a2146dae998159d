"""`make bench`: cold start, request overhead, DynamoDB requests, package size, local latency, cost."""
