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

output "AuditTableName" {
  value = aws_dynamodb_table.audit.name
}

output "EventBusName" {
  value = aws_cloudwatch_event_bus.changes.name
}

output "ChangeDeadLetterQueueUrl" {
  value = aws_sqs_queue.change_dead_letters.url
}
