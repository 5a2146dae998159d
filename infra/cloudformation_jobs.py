"""The bulk jobs' part of the merge template (infra/cloudformation.py): the jobs table, the job
queue and its dead-letter queue, the queue policy that lets the stage's bucket notify it of new
import files, the changes to Chalice's worker function (app.py's `bulk_jobs`), and its alarms.
infra/terraform/jobs.tf describes the same resources; tests/infra compares them."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.job_store import ATTRIBUTE_DEFINITIONS, KEY_SCHEMA
from chalicelib.domain.jobs import EXPORT_PREFIX, IMPORT_PREFIX, MAX_RECEIVES
from infra.policies import worker_policy_document
from infra.stages import Stage

Json = dict[str, Any]
WORKER = "BulkJobs"  # Chalice's logical id for app.py's bulk_jobs (@app.on_sqs_message)
WORKER_EVENT = f"{WORKER}SqsEventSource"  # its SAM event, which Chalice names so
QUEUE, DEAD_LETTERS, QUEUE_POLICY, TABLE = "JobQueue", "JobDeadLetterQueue", "JobQueuePolicy", "JobsTable"


def _ref(name: str) -> Json:
    return {"Ref": name}


def _get_att(name: str, attribute: str) -> Json:
    return {"Fn::GetAtt": [name, attribute]}


def bucket_arn(stage: Stage) -> Json:
    """The avatar bucket's ARN by its name, not by reference: the queue policy must exist before the
    bucket's notification names the queue, so it cannot depend on the bucket."""
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{stage.avatar_bucket_name('${AWS::AccountId}')}"}


def job_storage(stage: Stage, limits: Json, table: Any, tags: list[Json]) -> Json:
    """The jobs table (kept as every table), the queue, its dead-letter queue and its policy.
    `table` is the merge template's table builder (infra/cloudformation.py _table)."""
    bulk = limits["bulk_jobs"]
    assert bulk["max_receive_count"] == MAX_RECEIVES
    return {
        # Every item expires (TTL) a week after its job was created.
        TABLE: table(stage, stage.jobs_table_name, KEY_SCHEMA, ATTRIBUTE_DEFINITIONS),
        DEAD_LETTERS: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": stage.jobs_dead_letter_queue_name,
                "MessageRetentionPeriod": bulk["dead_letter_retention_seconds"],
                "SqsManagedSseEnabled": True,
                "Tags": tags,
            },
        },
        QUEUE: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": stage.jobs_queue_name,
                "VisibilityTimeout": bulk["visibility_timeout_seconds"],
                "MessageRetentionPeriod": bulk["message_retention_seconds"],
                "RedrivePolicy": {
                    "deadLetterTargetArn": _get_att(DEAD_LETTERS, "Arn"),
                    "maxReceiveCount": bulk["max_receive_count"],
                },
                "SqsManagedSseEnabled": True,
                "Tags": tags,
            },
        },
        QUEUE_POLICY: {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [_ref(QUEUE)],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "NewImportFilesFromTheStagesBucket",
                            "Effect": "Allow",
                            "Principal": {"Service": "s3.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": _get_att(QUEUE, "Arn"),
                            "Condition": {
                                "ArnEquals": {"aws:SourceArn": bucket_arn(stage)},
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                            },
                        },
                        {
                            "Sid": "TlsOnly",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "sqs:*",
                            "Resource": _get_att(QUEUE, "Arn"),
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                },
            },
        },
    }


def bucket_changes(limits: Json) -> tuple[Json, list[Json]]:
    """What the avatar bucket gains: the notification of new import files to the queue, and the
    rules that expire the job files."""
    bulk = limits["bulk_jobs"]
    notification = {
        "QueueConfigurations": [
            {
                "Event": "s3:ObjectCreated:*",
                "Queue": _get_att(QUEUE, "Arn"),
                "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": IMPORT_PREFIX}]}},
            }
        ]
    }
    rules = [
        {
            "Id": "ExpireImportFiles",
            "Status": "Enabled",
            "Prefix": IMPORT_PREFIX,
            "ExpirationInDays": bulk["import_file_days"],
        },
        {
            "Id": "ExpireExportFiles",
            "Status": "Enabled",
            "Prefix": EXPORT_PREFIX,
            "ExpirationInDays": bulk["export_file_days"],
        },
    ]
    return notification, rules


def worker(stage: Stage) -> Json:
    """Changes to the worker Chalice packages: its name, its log group, what it reads and writes, and
    its role policy naming this stack's pool. Chalice names its queue by name (an Fn::Sub of the
    same ARN), which makes no dependency; the function's JOBS_QUEUE_URL references the queue, so the
    function, and the mapping SAM makes for it, come after the queue."""
    return {
        f"{WORKER}LogGroup": {"Properties": {"LogGroupName": f"/aws/lambda/{stage.worker_function_name}"}},
        WORKER: {
            "DependsOn": [f"{WORKER}LogGroup"],
            "Properties": {
                "FunctionName": stage.worker_function_name,
                "Environment": {
                    "Variables": {
                        # app.py declares the routes when the worker imports it; the pool must be real.
                        "USER_POOL_ARN": _get_att("UserPool", "Arn"),
                        "USER_POOL_ID": _ref("UserPool"),
                        "AVATAR_BUCKET": _ref("AvatarBucket"),
                        "JOBS_QUEUE_URL": _ref(QUEUE),
                    }
                },
            },
        },
        f"{WORKER}Role": {
            "Properties": {
                "Policies": [
                    {
                        "PolicyName": f"{WORKER}RolePolicy",
                        "PolicyDocument": worker_policy_document(stage, _get_att("UserPool", "Arn")),
                    }
                ]
            }
        },
    }


def outputs() -> Json:
    return {
        "JobsTableName": {"Value": _ref(TABLE)},
        "JobQueueUrl": {"Value": _ref(QUEUE)},
        "JobDeadLetterQueueUrl": {"Value": _ref(DEAD_LETTERS)},
    }
