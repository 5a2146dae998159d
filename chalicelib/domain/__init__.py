"""The domain: users, their records and sign-ins, the rules of who may do what, and the use
cases. Plain values in and out; storage and the identity provider are ports (repository.py,
identity.py) that adapters implement. Nothing here imports boto3 or knows HTTP."""
