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

resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  alarm_name          = "${var.api_name}-lambda-errors"
  alarm_description   = "Lambda errors above the threshold"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.api_handler.function_name }
  statistic           = "Sum"
  period              = local.alarms.lambda_errors.period_seconds
  evaluation_periods  = local.alarms.lambda_errors.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.alarms.lambda_errors.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "lambda_throttles" {
  alarm_name          = "${var.api_name}-lambda-throttles"
  alarm_description   = "Lambda throttled invocations"
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.api_handler.function_name }
  statistic           = "Sum"
  period              = local.alarms.lambda_throttles.period_seconds
  evaluation_periods  = local.alarms.lambda_throttles.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.alarms.lambda_throttles.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# 5XXError is 0 or 1 per request, so its Average is the share of requests that failed.
resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${var.api_name}-api-5xx-rate"
  alarm_description   = "Share of API responses that are 5XX"
  namespace           = "AWS/ApiGateway"
  metric_name         = "5XXError"
  dimensions          = { ApiName = var.api_name, Stage = var.api_stage }
  statistic           = "Average"
  period              = local.alarms.api_5xx_rate.period_seconds
  evaluation_periods  = local.alarms.api_5xx_rate.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.alarms.api_5xx_rate.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_latency_p99" {
  alarm_name          = "${var.api_name}-api-latency-p99"
  alarm_description   = "API p99 latency (ms) above the threshold"
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = { ApiName = var.api_name, Stage = var.api_stage }
  extended_statistic  = "p99"
  period              = local.alarms.api_p99_latency_ms.period_seconds
  evaluation_periods  = local.alarms.api_p99_latency_ms.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.alarms.api_p99_latency_ms.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
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
