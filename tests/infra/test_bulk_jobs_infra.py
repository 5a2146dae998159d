"""The bulk jobs' infrastructure (issue 22) in both formats: the jobs table, the job queue and its
dead-letter queue, the worker that reads it (as few at once as Cognito's quota allows), the
bucket's notification of new import files and the expiry of job files, the least-privilege role,
and the alarms. CloudFormation is read from `make package`'s output (and its SAM expansion),
Terraform from `make package-tf`'s; `make lint-infra` runs cfn-lint, checkov and `terraform
validate` on the same files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.job_store import ATTRIBUTE_DEFINITIONS, KEY_SCHEMA
from chalicelib.domain.jobs import EXPORT_PREFIX, IMPORT_PREFIX, MAX_RECEIVES
from chalicelib.domain.pacing import WORKER_MAX_CONCURRENCY
from infra.policies import policy_document, worker_policy_document
from infra.stages import DEPLOYED_STAGES, load_limits, load_stage
from tests.infra.test_terraform import Package, single
from tests.infra.test_terraform import package as package  # the module's fixture, reused

Template = dict[str, Any]
POOL_ARN = {"Fn::GetAtt": ["UserPool", "Arn"]}


@pytest.fixture(scope="module")
def templates(sam_files: dict[str, Path]) -> dict[str, Template]:
    return {name: json.loads(sam.read_text()) for name, sam in sam_files.items()}


def _props(template: Template, name: str) -> Template:
    return dict(template["Resources"][name]["Properties"])


# --- CloudFormation --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_jobs_table_is_kept_protected_and_expires_its_items(templates: dict[str, Template], name: str) -> None:
    table = templates[name]["Resources"]["JobsTable"]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["TableName"] == load_stage(name).jobs_table_name
    assert props["KeySchema"] == KEY_SCHEMA
    assert props["AttributeDefinitions"] == ATTRIBUTE_DEFINITIONS
    # A job and its report expire (docs/API.md states when).
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["DeletionProtectionEnabled"] is True
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_worker_reads_the_queue_one_message_at_a_time_at_bounded_concurrency(
    templates: dict[str, Template], name: str
) -> None:
    stage, bulk = load_stage(name), load_limits()["bulk_jobs"]
    resources = templates[name]["Resources"]
    worker = resources["BulkJobs"]
    props = worker["Properties"]
    assert props["FunctionName"] == stage.worker_function_name
    assert props["Handler"] == "app.bulk_jobs"
    (event,) = props["Events"].values()
    assert event["Type"] == "SQS"
    source = event["Properties"]
    assert source["Queue"]["Fn::Sub"].endswith(f":sqs:${{AWS::Region}}:${{AWS::AccountId}}:{stage.jobs_queue_name}")
    assert source["BatchSize"] == 1
    # Cognito's UserCreation quota is per account: a bounded number of workers, each paced.
    assert source["ScalingConfig"] == {"MaximumConcurrency": WORKER_MAX_CONCURRENCY}
    queue = _props(templates[name], "JobQueue")
    assert queue["QueueName"] == stage.jobs_queue_name
    # Lambda requires a visibility timeout of at least the function's; AWS advises six times.
    assert queue["VisibilityTimeout"] == 6 * props["Timeout"] == bulk["visibility_timeout_seconds"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["JobDeadLetterQueue", "Arn"]},
        "maxReceiveCount": MAX_RECEIVES,
    }
    dead = _props(templates[name], "JobDeadLetterQueue")
    assert dead["QueueName"] == stage.jobs_dead_letter_queue_name
    assert dead["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert queue["SqsManagedSseEnabled"] is dead["SqsManagedSseEnabled"] is True
    variables = props["Environment"]["Variables"]
    assert variables["JOBS_QUEUE_URL"] == {"Ref": "JobQueue"}  # orders the function after the queue
    assert variables["JOBS_TABLE_NAME"] == stage.jobs_table_name
    assert variables["USER_POOL_ID"] == {"Ref": "UserPool"}
    assert variables["USER_POOL_ARN"] == POOL_ARN
    assert variables["AVATAR_BUCKET"] == {"Ref": "AvatarBucket"}
    assert worker["DependsOn"] == ["BulkJobsLogGroup"]
    log_group = _props(templates[name], "BulkJobsLogGroup")
    assert log_group["LogGroupName"] == f"/aws/lambda/{stage.worker_function_name}"
    # The API function sends an export's first message and needs the queue's URL too.
    api = _props(templates[name], "APIHandler")["Environment"]["Variables"]
    assert api["JOBS_QUEUE_URL"] == {"Ref": "JobQueue"}


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_roles_are_the_policy_files_naming_this_stacks_pool(templates: dict[str, Template], name: str) -> None:
    stage = load_stage(name)
    (policy,) = _props(templates[name], "BulkJobsRole")["Policies"]
    assert policy["PolicyDocument"] == worker_policy_document(stage, POOL_ARN)
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    # Files under their own prefixes only; the queue and the tables by name; nothing on "*".
    assert statements["ImportFiles"]["Resource"].endswith(f"/{IMPORT_PREFIX}*")
    assert statements["ExportFiles"]["Resource"].endswith(f"/{EXPORT_PREFIX}*")
    assert all(s["Resource"] != "*" for s in statements.values())
    # The API function's job grants (tests/integration/test_iam_policy_bulk_jobs.py checks them
    # against the calls) are in its own role policy.
    api_sids = {s["Sid"] for s in policy_document(stage)["Statement"]}
    assert {"ImportFiles", "ExportFiles", "StartExports"} <= api_sids


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_new_import_files_notify_the_queue_which_only_the_stages_bucket_may_send_to(
    templates: dict[str, Template], name: str
) -> None:
    stage, bulk = load_stage(name), load_limits()["bulk_jobs"]
    resources = templates[name]["Resources"]
    bucket = resources["AvatarBucket"]
    (notification,) = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Queue"] == {"Fn::GetAtt": ["JobQueue", "Arn"]}
    assert notification["Filter"] == {"S3Key": {"Rules": [{"Name": "prefix", "Value": IMPORT_PREFIX}]}}
    # S3 checks, when the notification is set, that it may send to the queue.
    assert "JobQueuePolicy" in bucket["DependsOn"]
    allow, tls = _props(templates[name], "JobQueuePolicy")["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{stage.avatar_bucket_name('${AWS::AccountId}')}"
    }
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert (tls["Effect"], tls["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireImportFiles"]["Prefix"] == IMPORT_PREFIX
    assert rules["ExpireImportFiles"]["ExpirationInDays"] == bulk["import_file_days"]
    assert rules["ExpireExportFiles"]["Prefix"] == EXPORT_PREFIX
    assert rules["ExpireExportFiles"]["ExpirationInDays"] == bulk["export_file_days"]


def test_alarms_on_worker_errors_and_dead_letters_notify_the_topic(templates: dict[str, Template]) -> None:
    prod = templates["prod"]
    errors = _props(prod, "JobWorkerErrorsAlarm")
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "BulkJobs"}}]
    dead = _props(prod, "JobDeadLettersAlarm")
    assert (dead["Namespace"], dead["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dead["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["JobDeadLetterQueue", "QueueName"]}}]
    for alarm in (errors, dead):
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}] and alarm["Threshold"] == 0
    assert {"JobsTableName", "JobQueueUrl", "JobDeadLetterQueueUrl"} <= set(prod["Outputs"])


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_sam_expansion_maps_the_queue_to_the_worker(expanded: dict[str, Template], name: str) -> None:
    mappings = [
        r["Properties"]
        for r in expanded[name]["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping" and r["Properties"]["FunctionName"] == {"Ref": "BulkJobs"}
    ]
    (mapping,) = mappings
    assert mapping["EventSourceArn"]["Fn::Sub"].endswith(load_stage(name).jobs_queue_name)
    assert mapping["BatchSize"] == 1
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": WORKER_MAX_CONCURRENCY}


# --- Terraform -------------------------------------------------------------------------------------


def test_terraform_has_the_same_table_queues_and_numbers(package: Package) -> None:
    stage, bulk = load_stage("prod"), package.limits["bulk_jobs"]
    table = package.resource("aws_dynamodb_table", "jobs")
    keys = [
        {"AttributeName": table["hash_key"], "KeyType": "HASH"},
        {"AttributeName": table["range_key"], "KeyType": "RANGE"},
    ]
    assert keys == KEY_SCHEMA
    assert single(table["ttl"]) == {"attribute_name": "expiresAt", "enabled": True}
    assert single(table["lifecycle"])["prevent_destroy"] is True
    assert table["deletion_protection_enabled"] is True
    assert package.tfvars["jobs_table_name"] == stage.jobs_table_name
    queue = package.resource("aws_sqs_queue", "jobs")
    assert package.value(queue["visibility_timeout_seconds"]) == bulk["visibility_timeout_seconds"]
    assert package.value(queue["message_retention_seconds"]) == bulk["message_retention_seconds"]
    assert queue["sqs_managed_sse_enabled"] is True
    assert "aws_sqs_queue.job_dead_letters.arn" in queue["redrive_policy"]
    assert "local.limits.bulk_jobs.max_receive_count" in queue["redrive_policy"]
    assert bulk["max_receive_count"] == MAX_RECEIVES
    assert package.tfvars["jobs_queue_name"] == stage.jobs_queue_name
    assert package.tfvars["jobs_dead_letter_queue_name"] == stage.jobs_dead_letter_queue_name


def test_terraform_notifies_the_queue_of_import_files_after_its_policy_allows_it(package: Package) -> None:
    notification = package.resource("aws_s3_bucket_notification", "avatars")
    queue = single(notification["queue"])
    assert queue["queue_arn"] == "${aws_sqs_queue.jobs.arn}"
    assert queue["events"] == ["s3:ObjectCreated:*"] and queue["filter_prefix"] == IMPORT_PREFIX
    assert notification["depends_on"] == ["${aws_sqs_queue_policy.jobs}"]
    policy = package.resource("aws_sqs_queue_policy", "jobs")["policy"]
    assert '"aws:SourceArn" = aws_s3_bucket.avatars.arn' in policy
    assert '"aws:SecureTransport" = "false"' in policy
    rules = {r["id"]: r for r in package.resource("aws_s3_bucket_lifecycle_configuration", "avatars")["rule"]}
    assert single(rules["ExpireImportFiles"]["filter"]) == {"prefix": IMPORT_PREFIX}
    assert single(rules["ExpireExportFiles"]["filter"]) == {"prefix": EXPORT_PREFIX}


def test_terraform_maps_the_queue_to_the_named_worker_with_its_own_policy(package: Package) -> None:
    chalice = package.chalice["resource"]
    mapping = chalice["aws_lambda_event_source_mapping"]["bulk_jobs-sqs-event-source"]
    assert mapping["batch_size"] == 1
    assert mapping["scaling_config"] == {"maximum_concurrency": WORKER_MAX_CONCURRENCY}
    override = package.override("aws_lambda_event_source_mapping", "bulk_jobs-sqs-event-source")
    # The queue itself, not its ARN by name: the mapping comes after the queue.
    assert override["event_source_arn"] == "${aws_sqs_queue.jobs.arn}"
    assert "aws_cloudwatch_log_group.bulk_jobs" in override["tags"]
    function = package.override("aws_lambda_function", "bulk_jobs")
    assert function["function_name"] == "${var.worker_function_name}"
    assert package.tfvars["worker_function_name"] == load_stage("prod").worker_function_name
    variables = single(function["environment"])["variables"]
    for expected in ("aws_cognito_user_pool.users.id", "aws_s3_bucket.avatars.bucket", "aws_sqs_queue.jobs.url"):
        assert expected in variables
    policy = chalice["aws_iam_role_policy"]["bulk_jobs_role"]["policy"]
    # Packaging names this stack's pool where the policy file names any pool of the account.
    pool = "${aws_cognito_user_pool.users.arn}"
    assert json.loads(policy.replace("$${", "${")) == worker_policy_document(load_stage("prod"), pool)
    log_group = package.resource("aws_cloudwatch_log_group", "bulk_jobs")
    assert log_group["name"] == "/aws/lambda/${var.worker_function_name}"
    api = single(package.override("aws_lambda_function", "api_handler")["environment"])["variables"]
    assert "aws_sqs_queue.jobs.url" in api
