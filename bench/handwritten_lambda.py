"""The hand-written contender: a `lambda_handler` with an if/elif router, about the least a Python
function can do to serve GET /users/{id} and POST /users with the same AWS calls as the app.

It is what a careful developer would write without a framework: its boto3 clients are made at
import (Lambda's INIT), from one session, with the app's timeouts and retry mode (so the SDK
does the same work per call). It imports neither chalice nor chalicelib: the cold start section
copies this file into the unpacked package and imports it as Lambda would. The bare Chalice
contender (bench/request_overhead.py) serves its routes with `read_user` and `create_user`.

The same operations as the app, call for call:
- GET: one strongly consistent GetItem of the user;
- POST: Cognito AdminCreateUser (no message), a TransactWriteItems putting the user's item
  (the attributes the app stores, its search keys included) and its email reservation, each on a condition, then
  AdminCreateUser RESEND, which mails the invitation.
"""

from __future__ import annotations

import json
import os
import time
import unicodedata
import uuid
from typing import Any

import boto3
from botocore.config import Config

TABLE = os.environ.get("TABLE_NAME", "users")
POOL = os.environ.get("USER_POOL_ID", "")
CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 3})
_session = boto3.session.Session()
dynamodb = _session.client("dynamodb", config=CONFIG)
cognito = _session.client("cognito-idp", config=CONFIG)
JSON_HEADERS = {"Content-Type": "application/json"}


def read_user(user_id: str) -> dict[str, Any] | None:
    item = dynamodb.get_item(TableName=TABLE, Key={"userId": {"S": user_id}}, ConsistentRead=True).get("Item")
    if not item or "listingId" not in item:
        return None
    return {
        "userId": item["userId"]["S"],
        "name": item["name"]["S"],
        "email": item["email"]["S"],
        "phone": item["phone"]["S"] if "phone" in item else None,
        "createdAt": item["createdAt"]["S"],
        "updatedAt": item["updatedAt"]["S"],
    }


def create_user(body: dict[str, Any]) -> dict[str, Any]:
    email, name, phone = body["email"], body["name"], body.get("phone")
    attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
    made = cognito.admin_create_user(
        UserPoolId=POOL, Username=email, UserAttributes=attributes, MessageAction="SUPPRESS"
    )
    sub = next(a["Value"] for a in made["User"]["Attributes"] if a["Name"] == "sub")
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    token = uuid.uuid4().hex
    item = {
        "userId": {"S": sub},
        "listingId": {"S": sub},
        "name": {"S": name},
        "email": {"S": email},
        "emailKey": {"S": email.lower()},
        "createdAt": {"S": now},
        "updatedAt": {"S": now},
        "version": {"N": "1"},
        "role": {"S": "member"},
        "enabled": {"BOOL": True},
        # The search indexes' keys (partition, creation, case-folded name), as the app writes them.
        "listState": {"S": "member#enabled"},
        "listCreated": {"S": f"{now}#{sub}"},
        "listName": {"S": unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold()) + "\x1f" + sub},
        "writeToken": {"S": token},
        "writtenBy": {"S": sub},
        "createToken": {"S": token},
    }
    if phone is not None:
        item["phone"] = {"S": phone}
    reservation = {"userId": {"S": "EMAIL#" + email.lower()}, "ownerId": {"S": sub}}
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": item, "ConditionExpression": "attribute_not_exists(listingId)"}},
            {"Put": {"TableName": TABLE, "Item": reservation, "ConditionExpression": "attribute_not_exists(userId)"}},
        ],
        ClientRequestToken=token,
    )
    cognito.admin_create_user(UserPoolId=POOL, Username=email, MessageAction="RESEND")
    return {"userId": sub, "name": name, "email": email, "phone": phone, "createdAt": now, "updatedAt": now}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method, resource = event["httpMethod"], event["resource"]
    if method == "GET" and resource == "/users/{userId}":
        user = read_user(event["pathParameters"]["userId"])
        if user is None:
            return {"statusCode": 404, "headers": JSON_HEADERS, "body": '{"error":"User not found"}'}
        return {"statusCode": 200, "headers": JSON_HEADERS, "body": json.dumps(user)}
    if method == "POST" and resource == "/users":
        user = create_user(json.loads(event["body"] or "{}"))
        return {"statusCode": 201, "headers": JSON_HEADERS, "body": json.dumps(user)}
    return {"statusCode": 404, "headers": JSON_HEADERS, "body": '{"error":"Not found"}'}
