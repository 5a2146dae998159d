"""The adapters: AWS (DynamoDB, Cognito, S3, Secrets Manager, EventBridge) behind the domain's ports,
every call through one path (aws.py)."""
