# Releases through CodeDeploy, as the CloudFormation package does with SAM's DeploymentPreference:
# `terraform apply` publishes a new version of the API function but leaves the live alias where
# it is; `make release-tf STAGE=...` (infra/release_tf.py) then asks CodeDeploy to move the alias:
# the pre-traffic hook first, then the stage's traffic shifting, rolled back on the alarms below.

resource "aws_codedeploy_app" "api" {
  name             = var.api_name
  compute_platform = "Lambda"
  tags             = var.tags
}

# The managed role SAM gives CodeDeploy too: it may move the alias and read the alarms, and
# invoke only functions named CodeDeployHook_*, which is why the hook is named so.
resource "aws_iam_role" "codedeploy" {
  name_prefix = "codedeploy-${var.stage}-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "codedeploy.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "codedeploy" {
  role       = aws_iam_role.codedeploy.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda"
}

resource "aws_codedeploy_deployment_group" "live" {
  app_name               = aws_codedeploy_app.api.name
  deployment_group_name  = "live" # infra/policies.py DEPLOYMENT_GROUP: the hook's policy names it
  service_role_arn       = aws_iam_role.codedeploy.arn
  deployment_config_name = "CodeDeployDefault.Lambda${var.traffic_shifting}"

  deployment_style {
    deployment_type   = "BLUE_GREEN"
    deployment_option = "WITH_TRAFFIC_CONTROL"
  }

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"]
  }

  alarm_configuration {
    enabled = true
    alarms = [
      aws_cloudwatch_metric_alarm.rollback_lambda_errors.alarm_name,
      aws_cloudwatch_metric_alarm.rollback_api_5xx_rate.alarm_name,
    ]
  }

  tags = var.tags
}

# The stream consumer's releases: its `live` alias (events.tf), its own hook and its own alarms.
resource "aws_codedeploy_deployment_group" "changes_live" {
  app_name               = aws_codedeploy_app.api.name
  deployment_group_name  = "changes-live" # infra/policies.py CHANGES_DEPLOYMENT_GROUP: its hook's policy names it
  service_role_arn       = aws_iam_role.codedeploy.arn
  deployment_config_name = "CodeDeployDefault.Lambda${var.traffic_shifting}"

  deployment_style {
    deployment_type   = "BLUE_GREEN"
    deployment_option = "WITH_TRAFFIC_CONTROL"
  }

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"]
  }

  alarm_configuration {
    enabled = true
    alarms = [
      aws_cloudwatch_metric_alarm.rollback_change_consumer_errors.alarm_name,
      aws_cloudwatch_metric_alarm.rollback_change_dead_letters.alarm_name,
    ]
  }

  tags = var.tags
}

# Only CodeDeploy invokes the hooks, after the apply, so their groups exist before their first line
# (an override file cannot add depends_on to Chalice's functions).
resource "aws_cloudwatch_log_group" "pre_traffic_hook" {
  name              = "/aws/lambda/CodeDeployHook_${var.function_name}"
  retention_in_days = var.lambda_log_retention_days
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "changes_pre_traffic_hook" {
  name              = "/aws/lambda/CodeDeployHook_${var.consumer_function_name}"
  retention_in_days = var.lambda_log_retention_days
  tags              = var.tags
}

# Rollback alarms (limits.json rollback_alarms): tight enough to fire on a 10 % canary.
resource "aws_cloudwatch_metric_alarm" "rollback_lambda_errors" {
  alarm_name        = "${var.api_name}-rollback-lambda-errors"
  alarm_description = "Errors of the live alias while traffic shifts: CodeDeploy rolls back"
  namespace         = "AWS/Lambda"
  metric_name       = "Errors"
  # The alias's own metric, not the whole function's.
  dimensions = {
    FunctionName = aws_lambda_function.api_handler.function_name
    Resource     = "${aws_lambda_function.api_handler.function_name}:${aws_lambda_alias.live.name}"
  }
  statistic           = "Sum"
  period              = local.limits.rollback_alarms.lambda_errors.period_seconds
  evaluation_periods  = local.limits.rollback_alarms.lambda_errors.evaluation_periods
  datapoints_to_alarm = local.limits.rollback_alarms.lambda_errors.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.limits.rollback_alarms.lambda_errors.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "rollback_api_5xx_rate" {
  alarm_name          = "${var.api_name}-rollback-api-5xx-rate"
  alarm_description   = "API 5XX rate while traffic shifts: CodeDeploy rolls back"
  namespace           = "AWS/ApiGateway"
  metric_name         = "5XXError"
  dimensions          = { ApiName = var.api_name, Stage = var.api_stage }
  statistic           = "Average"
  period              = local.limits.rollback_alarms.api_5xx_rate.period_seconds
  evaluation_periods  = local.limits.rollback_alarms.api_5xx_rate.evaluation_periods
  datapoints_to_alarm = local.limits.rollback_alarms.api_5xx_rate.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.limits.rollback_alarms.api_5xx_rate.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# The consumer's (limits.json rollback_alarms): a crash of its live alias, or a new dead letter.
resource "aws_cloudwatch_metric_alarm" "rollback_change_consumer_errors" {
  alarm_name        = "${var.api_name}-rollback-change-consumer-errors"
  alarm_description = "Errors of the consumer's live alias while CodeDeploy moves it: rolled back"
  namespace         = "AWS/Lambda"
  metric_name       = "Errors"
  dimensions = {
    FunctionName = aws_lambda_function.user_changes.function_name
    Resource     = "${aws_lambda_function.user_changes.function_name}:${aws_lambda_alias.user_changes_live.name}"
  }
  statistic           = "Sum"
  period              = local.limits.rollback_alarms.consumer_errors.period_seconds
  evaluation_periods  = local.limits.rollback_alarms.consumer_errors.evaluation_periods
  datapoints_to_alarm = local.limits.rollback_alarms.consumer_errors.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.limits.rollback_alarms.consumer_errors.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# Messages sent, not visible: dead letters waiting for a replay must not block the fixing release.
resource "aws_cloudwatch_metric_alarm" "rollback_change_dead_letters" {
  alarm_name          = "${var.api_name}-rollback-change-dead-letters"
  alarm_description   = "Batches the consumer gave up on while CodeDeploy moves its live alias: rolled back"
  namespace           = "AWS/SQS"
  metric_name         = "NumberOfMessagesSent"
  dimensions          = { QueueName = aws_sqs_queue.change_dead_letters.name }
  statistic           = "Sum"
  period              = local.limits.rollback_alarms.dead_letters.period_seconds
  evaluation_periods  = local.limits.rollback_alarms.dead_letters.evaluation_periods
  datapoints_to_alarm = local.limits.rollback_alarms.dead_letters.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.limits.rollback_alarms.dead_letters.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# What `make release-tf` reads: one release per function with a `live` alias, API first.
output "Releases" {
  value = [
    {
      function_name     = aws_lambda_function.api_handler.function_name
      alias             = aws_lambda_alias.live.name
      target_version    = aws_lambda_function.api_handler.version
      hook              = aws_lambda_function.pre_traffic_hook.function_name
      hook_timeout      = aws_lambda_function.pre_traffic_hook.timeout
      application       = aws_codedeploy_app.api.name
      deployment_group  = aws_codedeploy_deployment_group.live.deployment_group_name
      deployment_config = aws_codedeploy_deployment_group.live.deployment_config_name
    },
    {
      function_name     = aws_lambda_function.user_changes.function_name
      alias             = aws_lambda_alias.user_changes_live.name
      target_version    = aws_lambda_function.user_changes.version
      hook              = aws_lambda_function.changes_pre_traffic_hook.function_name
      hook_timeout      = aws_lambda_function.changes_pre_traffic_hook.timeout
      application       = aws_codedeploy_app.api.name
      deployment_group  = aws_codedeploy_deployment_group.changes_live.deployment_group_name
      deployment_config = aws_codedeploy_deployment_group.changes_live.deployment_config_name
    },
  ]
}
