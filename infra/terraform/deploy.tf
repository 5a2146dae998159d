# Releases through CodeDeploy, as the CloudFormation package does with SAM's DeploymentPreference:
# `terraform apply` publishes a new version of the API function but leaves the live alias where
# it is; `make release-tf STAGE=...` (ops/release_tf.py) then asks CodeDeploy to move the alias:
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
      aws_cloudwatch_metric_alarm.metric["rollback_lambda_errors"].alarm_name,
      aws_cloudwatch_metric_alarm.metric["rollback_api_5xx_rate"].alarm_name,
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
      aws_cloudwatch_metric_alarm.metric["rollback_change_consumer_errors"].alarm_name,
      aws_cloudwatch_metric_alarm.metric["rollback_change_dead_letters"].alarm_name,
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
