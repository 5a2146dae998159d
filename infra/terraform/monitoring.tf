locals {
  alarms = local.limits.alarms
  # Every alarm notifies on both transitions, so recoveries are seen as well as incidents.
  alarm_actions = [aws_sns_topic.alarms.arn]
}

resource "aws_sns_topic" "alarms" {
  name = "${var.api_name}-alarms"
  tags = var.tags
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email != "" ? 1 : 0

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# Every single-metric alarm, defined once in limits.json (metric_alarms, which the CloudFormation
# build reads too) and built here one way. 5XXError is 0 or 1 per request, so its Average is the
# share of requests that failed; a rollback alarm watches the live alias's own metric, not the
# whole function's.
locals {
  alarm_limits = {
    alarms          = local.limits.alarms
    rollback_alarms = local.limits.rollback_alarms
    change_events   = local.limits.change_events.alarms
    bulk_jobs       = local.limits.bulk_jobs.alarms
  }
  alarm_dimensions = {
    function = { FunctionName = aws_lambda_function.api_handler.function_name }
    function_live = {
      FunctionName = aws_lambda_function.api_handler.function_name
      Resource     = "${aws_lambda_function.api_handler.function_name}:${aws_lambda_alias.live.name}"
    }
    api      = { ApiName = var.api_name, Stage = var.api_stage }
    consumer = { FunctionName = aws_lambda_function.user_changes.function_name }
    consumer_live = {
      FunctionName = aws_lambda_function.user_changes.function_name
      Resource     = "${aws_lambda_function.user_changes.function_name}:${aws_lambda_alias.user_changes_live.name}"
    }
    dead_letters     = { QueueName = aws_sqs_queue.change_dead_letters.name }
    job_worker       = { FunctionName = aws_lambda_function.bulk_jobs.function_name }
    job_dead_letters = { QueueName = aws_sqs_queue.job_dead_letters.name }
  }
  metric_alarms = {
    for key, alarm in local.limits.metric_alarms : key => merge(alarm, local.alarm_limits[alarm.limits[0]][alarm.limits[1]])
  }
}

resource "aws_cloudwatch_metric_alarm" "metric" {
  for_each = local.metric_alarms

  alarm_name          = "${var.api_name}-${each.value.name}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = local.alarm_dimensions[each.value.dimensions]
  statistic           = startswith(each.value.statistic, "p") ? null : each.value.statistic
  extended_statistic  = startswith(each.value.statistic, "p") ? each.value.statistic : null
  period              = each.value.period_seconds
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = each.value.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# Each alarm's address before it was one of the above: an applied stack keeps its alarms.
moved {
  from = aws_cloudwatch_metric_alarm.lambda_errors
  to   = aws_cloudwatch_metric_alarm.metric["lambda_errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_throttles
  to   = aws_cloudwatch_metric_alarm.metric["lambda_throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.api_5xx_rate
  to   = aws_cloudwatch_metric_alarm.metric["api_5xx_rate"]
}

moved {
  from = aws_cloudwatch_metric_alarm.api_latency_p99
  to   = aws_cloudwatch_metric_alarm.metric["api_latency_p99"]
}

moved {
  from = aws_cloudwatch_metric_alarm.rollback_lambda_errors
  to   = aws_cloudwatch_metric_alarm.metric["rollback_lambda_errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.rollback_api_5xx_rate
  to   = aws_cloudwatch_metric_alarm.metric["rollback_api_5xx_rate"]
}

moved {
  from = aws_cloudwatch_metric_alarm.rollback_change_consumer_errors
  to   = aws_cloudwatch_metric_alarm.metric["rollback_change_consumer_errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.rollback_change_dead_letters
  to   = aws_cloudwatch_metric_alarm.metric["rollback_change_dead_letters"]
}

moved {
  from = aws_cloudwatch_metric_alarm.change_consumer_errors
  to   = aws_cloudwatch_metric_alarm.metric["change_consumer_errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.change_consumer_iterator_age
  to   = aws_cloudwatch_metric_alarm.metric["change_consumer_iterator_age"]
}

moved {
  from = aws_cloudwatch_metric_alarm.change_dead_letters
  to   = aws_cloudwatch_metric_alarm.metric["change_dead_letters"]
}

moved {
  from = aws_cloudwatch_metric_alarm.job_worker_errors
  to   = aws_cloudwatch_metric_alarm.metric["job_worker_errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.job_dead_letters
  to   = aws_cloudwatch_metric_alarm.metric["job_dead_letters"]
}

# DynamoDB reports throttling per operation; one alarm on their sum covers every call the app makes.
resource "aws_cloudwatch_metric_alarm" "dynamodb_throttles" {
  alarm_name          = "${var.api_name}-dynamodb-throttles"
  alarm_description   = "DynamoDB throttled requests on the users table"
  evaluation_periods  = local.alarms.dynamodb_throttled_requests.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.alarms.dynamodb_throttled_requests.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags

  dynamic "metric_query" {
    for_each = local.alarms.dynamodb_throttled_requests.operations

    content {
      id          = "m${metric_query.key}"
      return_data = false

      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = "ThrottledRequests"
        dimensions  = { TableName = aws_dynamodb_table.users.name, Operation = metric_query.value }
        stat        = "Sum"
        period      = local.alarms.dynamodb_throttled_requests.period_seconds
      }
    }
  }

  metric_query {
    id          = "throttled"
    label       = "Throttled requests, all operations"
    expression  = "SUM(METRICS())"
    return_data = true
  }
}
