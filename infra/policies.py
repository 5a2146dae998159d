"""The Lambda role's least-privilege policy per stage, written to .chalice/policy-<stage>.json.

The DynamoDB and S3 actions are those the code calls (tests run it on moto and compare); every
data action names this stage's table, index, secret or avatar keys, never "*".
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.avatars import KEY_PREFIX
from chalicelib.table_schema import LISTING_INDEX
from infra.stages import PROJECT_DIR, Stage

# Item actions, including those inside TransactWriteItems (IAM checks each item's action).
TABLE_ACTIONS = ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
INDEX_ACTIONS = ("dynamodb:Scan",)
# X-Ray accepts no resource-level permissions: "*" is the only possible resource.
XRAY_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")
# Presigned POST and GET act with the signer's rights when used; HeadObject needs GetObject.
AVATAR_ACTIONS = ("s3:DeleteObject", "s3:GetObject", "s3:PutObject")
# An IAM policy variable: the static policy file names the bucket of whichever account runs it.
POLICY_ACCOUNT = "${aws:PrincipalAccount}"


def policy_path(stage: str) -> str:
    return str(PROJECT_DIR / ".chalice" / f"policy-{stage}.json")


def table_arn(stage: Stage) -> str:
    return f"arn:aws:dynamodb:*:*:table/{stage.table_name}"


def avatar_objects_arn(stage: Stage) -> str:
    return f"arn:aws:s3:::{stage.avatar_bucket_name(POLICY_ACCOUNT)}/{KEY_PREFIX}*"


def policy_document(stage: Stage) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UsersTableItems",
                "Effect": "Allow",
                "Action": list(TABLE_ACTIONS),
                "Resource": table_arn(stage),
            },
            {
                "Sid": "UsersListingIndex",
                "Effect": "Allow",
                "Action": list(INDEX_ACTIONS),
                "Resource": f"{table_arn(stage)}/index/{LISTING_INDEX}",
            },
            {
                "Sid": "CursorSecret",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                # Secrets Manager appends "-" and six random characters to the name.
                "Resource": f"arn:aws:secretsmanager:*:*:secret:{stage.cursor_secret_name}-??????",
            },
            {
                "Sid": "AvatarObjects",
                "Effect": "Allow",
                "Action": list(AVATAR_ACTIONS),
                "Resource": avatar_objects_arn(stage),
            },
            {
                "Sid": "OwnLogGroup",
                "Effect": "Allow",
                # The log group itself is created by the deployment (with its retention), not by the function.
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"arn:aws:logs:*:*:log-group:/aws/lambda/{stage.function_name}:*",
            },
            {"Sid": "Tracing", "Effect": "Allow", "Action": list(XRAY_ACTIONS), "Resource": "*"},
        ],
    }


def render(stage: Stage) -> str:
    return json.dumps(policy_document(stage), indent=2) + "\n"
