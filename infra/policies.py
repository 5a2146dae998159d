"""The least-privilege role policies per stage, written to .chalice/policy-<stage>[-<function>].json.

Each function's policy is a table of grants: (Sid, actions, resource). Its actions are those the
code calls (tests/integration/test_iam_policy.py runs the code on moto, records the calls and
compares); every data action names this stage's own resources, never "*". Granting a new call
is one line: its action in the tuple of the statement that names its resource, or a new row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.avatars import KEY_PREFIX
from chalicelib.adapters.table_schema import LEGACY_LISTING_INDEX, SEARCH_INDEXES
from chalicelib.domain.jobs import EXPORT_PREFIX, IMPORT_PREFIX
from infra.stages import PROJECT_DIR, Stage

Json = dict[str, Any]
# A resource is an ARN, or (the CloudFormation override of the hook's policy) a template expression.
Resource = str | Json | list[str]

# Item actions, including those inside TransactWriteItems (IAM checks each item's action).
TABLE_ACTIONS = ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
# GET /users queries the search indexes (never scans them, nor the table).
INDEX_ACTIONS = ("dynamodb:Query",)
# What the previous release's GET /users does (a Scan of its `listing` index), granted to this
# release's role only so that the previous version keeps working while a release rolls out
# (chalicelib/adapters/table_schema.py LEGACY_LISTING_INDEX). This release never calls it; the
# next one drops it with the index.
PREVIOUS_RELEASE_ACTIONS = ("dynamodb:Scan",)
# The history route reads a user's audit entries; the consumer checks for and writes one.
AUDIT_READ_ACTIONS = ("dynamodb:Query",)
AUDIT_WRITE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")
# What Lambda's event source mapping does with the consumer's role: read the users table's stream
# (AWS's own example policy for a stream consumer), and send what it gives up on to the queue.
STREAM_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams")
DEAD_LETTER_ACTIONS = ("sqs:SendMessage",)
PUBLISH_ACTIONS = ("events:PutEvents",)
# The consumer only removes avatars of users whose trace expired.
AVATAR_REMOVE_ACTIONS = ("s3:DeleteObject",)
SECRET_ACTIONS = ("secretsmanager:GetSecretValue",)
# Presigned POST and GET act with the signer's rights when used; HeadObject needs GetObject.
AVATAR_ACTIONS = ("s3:DeleteObject", "s3:GetObject", "s3:PutObject")
# The log group itself is created by the deployment (with its retention), not by the function.
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
# X-Ray accepts no resource-level permissions: "*" is the only possible resource.
XRAY_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")
# The Cognito admin calls of chalicelib/adapters/cognito.py that the API's routes reach (the operators' drift
# tool, `make drift` (`python -m ops drift`), runs with its operator's credentials, not this role).
IDENTITY_ACTIONS = (
    "cognito-idp:AdminAddUserToGroup",
    "cognito-idp:AdminCreateUser",
    "cognito-idp:AdminDeleteUser",
    "cognito-idp:AdminDisableUser",
    "cognito-idp:AdminEnableUser",
    "cognito-idp:AdminGetUser",
    "cognito-idp:AdminListGroupsForUser",
    "cognito-idp:AdminRemoveUserFromGroup",
    "cognito-idp:AdminUpdateUserAttributes",
    "cognito-idp:AdminUserGlobalSignOut",
)
# Bulk jobs (imports and exports). The API function starts, reads and cancels jobs: their table,
# the import file it puts (or signs a form for) and deletes on a cancel, the export it signs a
# download of, and the queue it sends an export's first message to.
JOBS_API_ACTIONS = (
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)
IMPORT_FILE_API_ACTIONS = ("s3:DeleteObject", "s3:PutObject")
EXPORT_FILE_API_ACTIONS = ("s3:GetObject",)
JOB_QUEUE_SEND_ACTIONS = ("sqs:SendMessage",)
# The worker: rows become users as POST /users makes them (the items of its transaction, the
# reads of a user and of an email's holder) and the sign-in calls of a create; a Scan of the table
# for an export (chalicelib/adapters/user_pages.py); its jobs' items (outcomes and counts in one
# transaction, a batch's done rows).
WORKER_USER_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:UpdateItem")
WORKER_JOBS_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
WORKER_IDENTITY_ACTIONS = (
    "cognito-idp:AdminAddUserToGroup",
    "cognito-idp:AdminCreateUser",
    "cognito-idp:AdminDeleteUser",
    "cognito-idp:AdminGetUser",
)
IMPORT_FILE_WORKER_ACTIONS = ("s3:DeleteObject", "s3:GetObject")
# A multipart upload's create, parts and completion are all authorised as PutObject; HeadObject
# (a completion whose answer was lost) as GetObject.
EXPORT_FILE_WORKER_ACTIONS = ("s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject")
# What Lambda's event source mapping does with the worker's role (AWSLambdaSQSQueueExecutionRole),
# and the worker's own sends: the planner's batches, a hand-over, a throttled batch put back.
JOB_QUEUE_WORKER_ACTIONS = ("sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage")

# The mail confirming a user's new email (chalicelib/adapters/ses_mailer.py), from the stage's SES identity.
MAIL_ACTIONS = ("ses:SendEmail",)
# The pre-traffic hook: invoke the version under test, then report to CodeDeploy.
INVOKE_ACTIONS = ("lambda:InvokeFunction",)
HOOK_REPORT_ACTIONS = ("codedeploy:PutLifecycleEventHookExecutionStatus",)

# An IAM policy variable: the static policy file names the bucket of whichever account runs it.
POLICY_ACCOUNT = "${aws:PrincipalAccount}"
# The static file cannot know the pool's id (the stack creates it): it names the account's pools,
# and the packaged stacks name the stage's own pool instead (infra/cloudformation.py replaces the
# role's policy, infra/packaging.py this string in the Terraform).
ACCOUNT_POOLS_ARN = f"arn:aws:cognito-idp:*:{POLICY_ACCOUNT}:userpool/*"
HOOK_FUNCTION = "pre_traffic_hook"  # the name app.py registers it under (@app.lambda_function)
CHANGES_HOOK_FUNCTION = "changes_pre_traffic_hook"  # the consumer's hook, likewise
CONSUMER_FUNCTION = "user_changes"  # the name app.py registers it under (@app.on_dynamodb_record)
WORKER_FUNCTION = "bulk_jobs"  # the name app.py registers it under (@app.on_sqs_message)
# Terraform's names (infra/terraform/deploy.tf); CloudFormation's are generated and the merge
# template replaces this resource with references to them.
DEPLOYMENT_GROUP = "live"
CHANGES_DEPLOYMENT_GROUP = "changes-live"


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: tuple[str, ...]
    resource: Resource

    def statement(self) -> Json:
        return {"Sid": self.sid, "Effect": "Allow", "Action": list(self.actions), "Resource": self.resource}


def policy_path(stage: str, function: str | None = None) -> str:
    suffix = "" if function is None else "-" + function.replace("_", "-")
    return str(PROJECT_DIR / ".chalice" / f"policy-{stage}{suffix}.json")


def table_arn(stage: Stage) -> str:
    return f"arn:aws:dynamodb:*:*:table/{stage.table_name}"


def audit_table_arn(stage: Stage) -> str:
    return f"arn:aws:dynamodb:*:*:table/{stage.audit_table_name}"


def stream_arn(stage: Stage) -> str:
    return f"{table_arn(stage)}/stream/*"


def event_bus_arn(stage: Stage) -> str:
    return f"arn:aws:events:*:*:event-bus/{stage.event_bus_name}"


def dead_letter_queue_arn(stage: Stage) -> str:
    return f"arn:aws:sqs:*:*:{stage.dead_letter_queue_name}"


def avatar_objects_arn(stage: Stage) -> str:
    return f"arn:aws:s3:::{stage.avatar_bucket_name(POLICY_ACCOUNT)}/{KEY_PREFIX}*"


def import_files_arn(stage: Stage) -> str:
    return f"arn:aws:s3:::{stage.avatar_bucket_name(POLICY_ACCOUNT)}/{IMPORT_PREFIX}*"


def export_files_arn(stage: Stage) -> str:
    return f"arn:aws:s3:::{stage.avatar_bucket_name(POLICY_ACCOUNT)}/{EXPORT_PREFIX}*"


def jobs_table_arn(stage: Stage) -> str:
    return f"arn:aws:dynamodb:*:*:table/{stage.jobs_table_name}"


def job_queue_arn(stage: Stage) -> str:
    return f"arn:aws:sqs:*:*:{stage.jobs_queue_name}"


def log_streams_arn(function_name: str) -> str:
    return f"arn:aws:logs:*:*:log-group:/aws/lambda/{function_name}:*"


def api_versions_arn(stage: Stage) -> str:
    """Every version (and alias) of the API function, never the unqualified $LATEST."""
    return f"arn:aws:lambda:*:*:function:{stage.function_name}:*"


def consumer_versions_arn(stage: Stage) -> str:
    """Every version (and alias) of the stream consumer, never the unqualified $LATEST."""
    return f"arn:aws:lambda:*:*:function:{stage.consumer_function_name}:*"


def deployment_group_arn(stage: Stage, group: str = DEPLOYMENT_GROUP) -> str:
    return f"arn:aws:codedeploy:*:*:deploymentgroup:{stage.api_name}/{group}"


def api_grants(stage: Stage, user_pool: Resource | None = None) -> list[Grant]:
    return [
        Grant("UsersTableItems", TABLE_ACTIONS, table_arn(stage)),
        Grant("UsersSearchIndexes", INDEX_ACTIONS, [f"{table_arn(stage)}/index/{name}" for name in SEARCH_INDEXES]),
        Grant("PreviousReleaseListing", PREVIOUS_RELEASE_ACTIONS, f"{table_arn(stage)}/index/{LEGACY_LISTING_INDEX}"),
        Grant("AuditTrailReads", AUDIT_READ_ACTIONS, audit_table_arn(stage)),
        # Secrets Manager appends "-" and six random characters to the name.
        Grant("CursorSecret", SECRET_ACTIONS, f"arn:aws:secretsmanager:*:*:secret:{stage.cursor_secret_name}-??????"),
        Grant("AvatarObjects", AVATAR_ACTIONS, avatar_objects_arn(stage)),
        Grant("OwnUserPool", IDENTITY_ACTIONS, user_pool or ACCOUNT_POOLS_ARN),
        Grant("BulkJobs", JOBS_API_ACTIONS, jobs_table_arn(stage)),
        Grant("ImportFiles", IMPORT_FILE_API_ACTIONS, import_files_arn(stage)),
        Grant("ExportFiles", EXPORT_FILE_API_ACTIONS, export_files_arn(stage)),
        Grant("StartExports", JOB_QUEUE_SEND_ACTIONS, job_queue_arn(stage)),
        Grant("OwnLogGroup", LOG_ACTIONS, log_streams_arn(stage.function_name)),
        Grant("Tracing", XRAY_ACTIONS, "*"),
        *mail_grants(stage),
    ]


def mail_grants(stage: Stage) -> list[Grant]:
    """Sending with the stage's SES identity, when it has one (infra/stages.json `ses_identity_arn`;
    the CloudFormation template grants the `SesIdentityArn` given at deploy time instead)."""
    if not stage.ses_identity_arn:
        return []
    return [Grant("SendEmailChangeCodes", MAIL_ACTIONS, stage.ses_identity_arn)]


def hook_grants(stage: Stage, deployment_group: Resource | None = None) -> list[Grant]:
    return [
        Grant("InvokeApiVersions", INVOKE_ACTIONS, api_versions_arn(stage)),
        Grant("ReportToItsDeploymentGroup", HOOK_REPORT_ACTIONS, deployment_group or deployment_group_arn(stage)),
        Grant("OwnLogGroup", LOG_ACTIONS, log_streams_arn(stage.hook_function_name)),
    ]


def changes_hook_grants(stage: Stage, deployment_group: Resource | None = None) -> list[Grant]:
    return [
        Grant("InvokeConsumerVersions", INVOKE_ACTIONS, consumer_versions_arn(stage)),
        Grant(
            "ReportToItsDeploymentGroup",
            HOOK_REPORT_ACTIONS,
            deployment_group or deployment_group_arn(stage, CHANGES_DEPLOYMENT_GROUP),
        ),
        Grant("OwnLogGroup", LOG_ACTIONS, log_streams_arn(stage.changes_hook_function_name)),
    ]


def consumer_grants(stage: Stage) -> list[Grant]:
    return [
        Grant("ReadUsersStream", STREAM_ACTIONS, stream_arn(stage)),
        Grant("AuditTrailWrites", AUDIT_WRITE_ACTIONS, audit_table_arn(stage)),
        Grant("PublishChanges", PUBLISH_ACTIONS, event_bus_arn(stage)),
        Grant("RemoveExpiredAvatars", AVATAR_REMOVE_ACTIONS, avatar_objects_arn(stage)),
        Grant("DeadLetters", DEAD_LETTER_ACTIONS, dead_letter_queue_arn(stage)),
        Grant("OwnLogGroup", LOG_ACTIONS, log_streams_arn(stage.consumer_function_name)),
    ]


def worker_grants(stage: Stage, user_pool: Resource | None = None) -> list[Grant]:
    return [
        Grant("UsersTableItems", WORKER_USER_ACTIONS, table_arn(stage)),
        Grant("BulkJobs", WORKER_JOBS_ACTIONS, jobs_table_arn(stage)),
        Grant("OwnUserPool", WORKER_IDENTITY_ACTIONS, user_pool or ACCOUNT_POOLS_ARN),
        Grant("ImportFiles", IMPORT_FILE_WORKER_ACTIONS, import_files_arn(stage)),
        Grant("ExportFiles", EXPORT_FILE_WORKER_ACTIONS, export_files_arn(stage)),
        Grant("JobQueue", JOB_QUEUE_WORKER_ACTIONS, job_queue_arn(stage)),
        Grant("OwnLogGroup", LOG_ACTIONS, log_streams_arn(stage.worker_function_name)),
    ]


def _document(grants: list[Grant]) -> Json:
    return {"Version": "2012-10-17", "Statement": [grant.statement() for grant in grants]}


def policy_document(stage: Stage, user_pool: Resource | None = None) -> Json:
    """The API function's role policy (`user_pool`: the stage's pool, where the template knows it)."""
    return _document(api_grants(stage, user_pool))


def hook_policy_document(stage: Stage, deployment_group: Resource | None = None) -> Json:
    """The pre-traffic hook's role policy; nothing of the API function's data."""
    return _document(hook_grants(stage, deployment_group))


def changes_hook_policy_document(stage: Stage, deployment_group: Resource | None = None) -> Json:
    """The consumer's pre-traffic hook's role policy: invoke consumer versions, report, log."""
    return _document(changes_hook_grants(stage, deployment_group))


def consumer_policy_document(stage: Stage) -> Json:
    """The stream consumer's role policy: the stream, the audit table, the bus, avatar deletes."""
    return _document(consumer_grants(stage))


def worker_policy_document(stage: Stage, user_pool: Resource | None = None) -> Json:
    """The bulk jobs worker's role policy: users as POST /users makes them, its jobs, files and queue."""
    return _document(worker_grants(stage, user_pool))


def rendered_files(stage: Stage) -> dict[str, str]:
    """Every policy file of `stage`: path -> content."""
    return {
        policy_path(stage.name): render(policy_document(stage)),
        policy_path(stage.name, HOOK_FUNCTION): render(hook_policy_document(stage)),
        policy_path(stage.name, CHANGES_HOOK_FUNCTION): render(changes_hook_policy_document(stage)),
        policy_path(stage.name, CONSUMER_FUNCTION): render(consumer_policy_document(stage)),
        policy_path(stage.name, WORKER_FUNCTION): render(worker_policy_document(stage)),
    }


def render(document: Json) -> str:
    return json.dumps(document, indent=2) + "\n"
