"""Values for infra/terraform/variables.tf, from the same stage settings as the CloudFormation."""

from __future__ import annotations

from typing import Any

from infra.invitation import invitation
from infra.stages import Stage, load_limits


def tfvars(stage: Stage) -> dict[str, Any]:
    text = invitation(load_limits())
    return {
        "stage": stage.name,
        "api_stage": stage.api_stage,
        "function_name": stage.function_name,
        "api_name": stage.api_name,
        "table_name": stage.table_name,
        "avatar_bucket_prefix": stage.avatar_bucket_name(""),
        "user_pool_name": stage.user_pool_name,
        "cursor_secret_name": stage.cursor_secret_name,
        "audit_table_name": stage.audit_table_name,
        "event_bus_name": stage.event_bus_name,
        "consumer_function_name": stage.consumer_function_name,
        "dead_letter_queue_name": stage.dead_letter_queue_name,
        "worker_function_name": stage.worker_function_name,
        "jobs_table_name": stage.jobs_table_name,
        "jobs_queue_name": stage.jobs_queue_name,
        "jobs_dead_letter_queue_name": stage.jobs_dead_letter_queue_name,
        "cors_allow_origin": stage.cors_origin,
        "require_api_key": stage.require_api_key,
        "api_cache": stage.api_cache,
        "waf": stage.waf,
        "provisioned_concurrency": stage.provisioned_concurrency,
        "traffic_shifting": stage.traffic_shifting,
        "api_log_retention_days": stage.api_log_retention_days,
        "lambda_log_retention_days": stage.lambda_log_retention_days,
        "lambda_environment": stage.lambda_environment,
        "tags": stage.tags,
        "ses_identity_arn": stage.ses_identity_arn,
        "email_from": stage.email_from,
        "invitation_email_subject": text["EmailSubject"],
        "invitation_email_message": text["EmailMessage"],
    }
