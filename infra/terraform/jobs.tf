# Bulk jobs (docs/API.md, Bulk jobs): the jobs table, the job queue and its dead-letter queue, the
# queue policy that lets the avatar bucket notify the queue of new import files, the worker's log
# group and its alarms. Mirrors JobsTable, JobQueue, JobDeadLetterQueue, JobQueuePolicy and the Job*
# alarms of infra/cloudformation_jobs.py; the bucket's notification and file expiry are in s3.tf.

# Key schema mirrors chalicelib/adapters/job_store.py (KEY_SCHEMA; the tests compare them).
resource "aws_dynamodb_table" "jobs" {
  name         = var.jobs_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "jobId"
  range_key    = "item"

  attribute {
    name = "jobId"
    type = "S"
  }

  attribute {
    name = "item"
    type = "S"
  }

  # A job and its report expire a week after the job was created (chalicelib/domain/jobs.py).
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

resource "aws_sqs_queue" "job_dead_letters" {
  name                      = var.jobs_dead_letter_queue_name
  message_retention_seconds = local.limits.bulk_jobs.dead_letter_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "jobs" {
  name                       = var.jobs_queue_name
  visibility_timeout_seconds = local.limits.bulk_jobs.visibility_timeout_seconds
  message_retention_seconds  = local.limits.bulk_jobs.message_retention_seconds
  sqs_managed_sse_enabled    = true
  tags                       = var.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.job_dead_letters.arn
    maxReceiveCount     = local.limits.bulk_jobs.max_receive_count
  })
}

resource "aws_sqs_queue_policy" "jobs" {
  queue_url = aws_sqs_queue.jobs.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "NewImportFilesFromTheStagesBucket"
        Effect    = "Allow"
        Principal = { Service = "s3.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = aws_sqs_queue.jobs.arn
        Condition = {
          ArnEquals    = { "aws:SourceArn" = aws_s3_bucket.avatars.arn }
          StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        }
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "sqs:*"
        Resource  = aws_sqs_queue.jobs.arn
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

# A new import file starts its job (chalicelib/domain/job_worker.py reads the event).
resource "aws_s3_bucket_notification" "avatars" {
  bucket = aws_s3_bucket.avatars.id

  queue {
    queue_arn     = aws_sqs_queue.jobs.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "imports/"
  }

  # S3 checks that it may notify the queue when the notification is set.
  depends_on = [aws_sqs_queue_policy.jobs]
}

resource "aws_cloudwatch_log_group" "bulk_jobs" {
  name              = "/aws/lambda/${var.worker_function_name}"
  retention_in_days = var.lambda_log_retention_days
  tags              = var.tags
}

output "JobsTableName" {
  value = aws_dynamodb_table.jobs.name
}

output "JobQueueUrl" {
  value = aws_sqs_queue.jobs.url
}

output "JobDeadLetterQueueUrl" {
  value = aws_sqs_queue.job_dead_letters.url
}
