"""The HTTP edge: the request pipeline, parsing and responses, the one map from errors to statuses,
the OpenAPI document, and token verification where API Gateway does not verify."""
