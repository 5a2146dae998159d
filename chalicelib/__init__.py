"""Runtime code of the User Management API (packaged into the Lambda zip)."""
