# Merged by Terraform into the blocks of the same name in Chalice's chalice.tf.json (a file whose
# name ends in _override.tf). Arguments here replace Chalice's; a nested block replaces Chalice's
# block of that type whole, which is why `environment` restates the stage's variables.

terraform {
  # Replaces Chalice's ">= 0.12.26, < 1.4.0" and ">= 3.61.0, < 5" for aws (packaging drops its
  # unused null provider). Terraform 1.11 for write-only attributes: the cursor key (data.tf)
  # never reaches the state. AWS provider 5.x for those attributes and the ephemeral random
  # password, and for the WAF rate rule's evaluation window.
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 6.0.0"
    }
  }
}

resource "aws_lambda_function" "api_handler" {
  # Each change publishes a version for the live alias, so API traffic and provisioned
  # concurrency move to new code together.
  publish = true

  environment {
    variables = merge(var.lambda_environment, {
      USER_POOL_ID        = aws_cognito_user_pool.users.id
      USER_POOL_CLIENT_ID = aws_cognito_user_pool_client.api.id
      USER_POOL_ARN       = aws_cognito_user_pool.users.arn
      CURSOR_SECRET_ARN   = aws_secretsmanager_secret.cursor.arn
      AVATAR_BUCKET       = aws_s3_bucket.avatars.bucket
      AUDIT_TABLE_NAME    = aws_dynamodb_table.audit.name
      JOBS_QUEUE_URL      = aws_sqs_queue.jobs.url
      # The sender of the code confirming a user's new email (SES); empty: no such mail (503).
      MAIL_FROM = var.ses_identity_arn == "" ? "" : var.email_from
    })
  }
}

# app.py's user_changes (chalicelib/domain/change_consumer.py), fed by the users table's stream (events.tf).
resource "aws_lambda_function" "user_changes" {
  function_name = var.consumer_function_name
  # Each change publishes a version; the mapping reads with the `live` alias, which CodeDeploy
  # moves (make release-tf, deploy.tf) after the consumer's own pre-traffic hook.
  publish = true

  environment {
    variables = merge(var.lambda_environment, {
      # app.py declares its routes when the consumer imports it, so the pool must be the real one.
      USER_POOL_ARN              = aws_cognito_user_pool.users.arn
      AVATAR_BUCKET              = aws_s3_bucket.avatars.bucket
      AUDIT_TABLE_NAME           = aws_dynamodb_table.audit.name
      EVENT_BUS_NAME             = aws_cloudwatch_event_bus.changes.name
      REPORT_BATCH_ITEM_FAILURES = "true"
    })
  }
}

# What the decorator has no arguments for: partial batch responses, bounded retries with
# bisection, the dead-letter queue and the record filter (limits.json change_events).
resource "aws_lambda_event_source_mapping" "user_changes-dynamodb-event-source" {
  # The alias, not the function: a new version reads the stream only once CodeDeploy released it.
  function_name                  = aws_lambda_alias.user_changes_live.arn
  function_response_types        = ["ReportBatchItemFailures"]
  maximum_retry_attempts         = local.limits.change_events.maximum_retry_attempts
  bisect_batch_on_function_error = true
  maximum_record_age_in_seconds  = local.limits.change_events.maximum_record_age_seconds

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.change_dead_letters.arn
    }
  }

  filter_criteria {
    dynamic "filter" {
      for_each = local.limits.change_events.filters

      content {
        pattern = jsonencode(filter.value)
      }
    }
  }

  # The role may write to its log group but not create it, and an override cannot add depends_on:
  # this reference orders the mapping, so the consumer's first invocation, after the group.
  tags = merge(var.tags, { "log-group" = aws_cloudwatch_log_group.user_changes.name })
}

resource "aws_iam_role" "user_changes_role" {
  tags = var.tags
}

# app.py's bulk_jobs (chalicelib/domain/job_worker.py), fed by the job queue (jobs.tf).
resource "aws_lambda_function" "bulk_jobs" {
  function_name = var.worker_function_name

  environment {
    variables = merge(var.lambda_environment, {
      # app.py declares its routes when the worker imports it, so the pool must be the real one.
      USER_POOL_ARN  = aws_cognito_user_pool.users.arn
      USER_POOL_ID   = aws_cognito_user_pool.users.id
      AVATAR_BUCKET  = aws_s3_bucket.avatars.bucket
      JOBS_QUEUE_URL = aws_sqs_queue.jobs.url
    })
  }
}

# Chalice names the queue by its ARN, built from its name: the queue itself instead, so the mapping
# comes after it (and, by the tag, after the worker's log group, which the role may not create).
resource "aws_lambda_event_source_mapping" "bulk_jobs-sqs-event-source" {
  event_source_arn = aws_sqs_queue.jobs.arn
  tags             = merge(var.tags, { "log-group" = aws_cloudwatch_log_group.bulk_jobs.name })
}

resource "aws_iam_role" "bulk_jobs_role" {
  tags = var.tags
}

# app.py's pre_traffic_hook (chalicelib/traffic_hook.py), which CodeDeploy runs before moving the
# live alias (deploy.tf): a name CodeDeploy's managed role may invoke, and the version to test.
resource "aws_lambda_function" "pre_traffic_hook" {
  function_name = "CodeDeployHook_${var.function_name}"

  environment {
    variables = merge(var.lambda_environment, {
      # app.py declares its routes when the hook imports it, so the pool must be the real one.
      USER_POOL_ARN      = aws_cognito_user_pool.users.arn
      TARGET_VERSION_ARN = aws_lambda_function.api_handler.qualified_arn
      API_STAGE          = var.api_stage
    })
  }
}

resource "aws_iam_role" "pre_traffic_hook_role" {
  tags = var.tags
}

# app.py's changes_pre_traffic_hook: the consumer's, which sends the new consumer version a synthetic
# stream batch it must answer without failures (chalicelib/traffic_hook.py).
resource "aws_lambda_function" "changes_pre_traffic_hook" {
  function_name = "CodeDeployHook_${var.consumer_function_name}"

  environment {
    variables = merge(var.lambda_environment, {
      USER_POOL_ARN      = aws_cognito_user_pool.users.arn
      TARGET_VERSION_ARN = aws_lambda_function.user_changes.qualified_arn
    })
  }
}

resource "aws_iam_role" "changes_pre_traffic_hook_role" {
  tags = var.tags
}

resource "aws_iam_role" "api_handler_role" {
  tags = var.tags
}

resource "aws_api_gateway_rest_api" "rest_api" {
  # Chalice names every stage's API after the app; one name per stage tells them apart and is
  # the ApiName dimension the alarms watch.
  name = var.api_name
  tags = var.tags
}

resource "aws_api_gateway_deployment" "rest_api" {
  # The stage is aws_api_gateway_stage.api (api.tf), so it can carry logging, caching and WAF.
  stage_name        = null
  stage_description = null

  # A new deployment snapshot whenever the body changes (routes, and the gateway responses,
  # which packaging puts in the body so that replacing it cannot drop them).
  triggers = {
    redeployment = md5(local.chalice_api_swagger)
  }

  # Chalice sets this too; restated because the stage must move to the new deployment before
  # the old one can be deleted.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lambda_permission" "rest_api_invoke" {
  # The swagger integrations invoke the alias, and a permission on the unqualified function
  # does not cover a qualified invocation.
  function_name = aws_lambda_function.api_handler.function_name
  qualifier     = aws_lambda_alias.live.name
  # Only the API's own stage may invoke it, as in the CloudFormation (Chalice allows every stage: `/*`).
  source_arn = "${aws_api_gateway_stage.api.execution_arn}/*"
}

output "EndpointURL" {
  value = aws_api_gateway_stage.api.invoke_url
}
