# Change events (docs/API.md, Change events): the audit table the consumer writes and the history route
# reads, the stage's bus, the consumer's dead-letter queue, its log group and its alarms. Mirrors
# AuditTable, ChangeEventBus, ChangeDeadLetterQueue and the Change* alarms in infra/cloudformation.py.

# Key schema mirrors chalicelib/adapters/table_schema.py (AUDIT_KEY_SCHEMA; the tests compare them).
resource "aws_dynamodb_table" "audit" {
  name         = var.audit_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "userId"
  range_key    = "position"

  attribute {
    name = "userId"
    type = "S"
  }

  attribute {
    name = "position"
    type = "S"
  }

  # Entries expire AUDIT_RETENTION_DAYS after their change (chalicelib/adapters/audit_log.py).
  ttl {
    attribute_name = "expiresAt"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  deletion_protection_enabled = true
  tags                        = var.tags

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_cloudwatch_event_bus" "changes" {
  name = var.event_bus_name
  tags = var.tags
}

# Receives, for each batch the mapping gave up on, where it lies in the stream (not the records):
# replay from the stream within its 24 hours.
resource "aws_sqs_queue" "change_dead_letters" {
  name                      = var.dead_letter_queue_name
  message_retention_seconds = local.limits.change_events.dead_letter_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_cloudwatch_log_group" "user_changes" {
  name              = "/aws/lambda/${var.consumer_function_name}"
  retention_in_days = var.lambda_log_retention_days
  tags              = var.tags
}

# The stream's mapping invokes this alias (chalice_override.tf), so a new consumer version reads
# records only after its hook, as the API function's `live` alias (lambda.tf).
resource "aws_lambda_alias" "user_changes_live" {
  name             = "live"
  description      = "The version the users table's stream mapping invokes"
  function_name    = aws_lambda_function.user_changes.function_name
  function_version = aws_lambda_function.user_changes.version

  # Created on the first version; after that CodeDeploy moves it (make release-tf, deploy.tf).
  lifecycle {
    ignore_changes = [function_version, routing_config]
  }

  depends_on = [aws_cloudwatch_log_group.user_changes]
}

resource "aws_cloudwatch_metric_alarm" "change_consumer_errors" {
  alarm_name          = "${var.api_name}-change-consumer-errors"
  alarm_description   = "The change consumer failed (a record it could not handle, or a crash): events and audit entries wait"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.user_changes.function_name }
  statistic           = "Sum"
  period              = local.limits.change_events.alarms.consumer_errors.period_seconds
  evaluation_periods  = local.limits.change_events.alarms.consumer_errors.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.limits.change_events.alarms.consumer_errors.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "change_consumer_iterator_age" {
  alarm_name          = "${var.api_name}-change-consumer-iterator-age"
  alarm_description   = "The change consumer is behind the users table's stream (iterator age, ms)"
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = aws_lambda_function.user_changes.function_name }
  statistic           = "Maximum"
  period              = local.limits.change_events.alarms.iterator_age_ms.period_seconds
  evaluation_periods  = local.limits.change_events.alarms.iterator_age_ms.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.limits.change_events.alarms.iterator_age_ms.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "change_dead_letters" {
  alarm_name          = "${var.api_name}-change-dead-letters"
  alarm_description   = "Stream records the change consumer gave up on: replay them within the stream's 24 hours"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.change_dead_letters.name }
  statistic           = "Maximum"
  period              = local.limits.change_events.alarms.dead_letters.period_seconds
  evaluation_periods  = local.limits.change_events.alarms.dead_letters.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.limits.change_events.alarms.dead_letters.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

output "AuditTableName" {
  value = aws_dynamodb_table.audit.name
}

output "EventBusName" {
  value = aws_cloudwatch_event_bus.changes.name
}

output "ChangeDeadLetterQueueUrl" {
  value = aws_sqs_queue.change_dead_letters.url
}
