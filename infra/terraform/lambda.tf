# Chalice's Terraform packager rejects log_retention_in_days, so the function's log group is
# created here; the function's role may write to it but not create it, so no log group without
# retention can appear first.
resource "aws_cloudwatch_log_group" "api_handler" {
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.lambda_log_retention_days
  tags              = var.tags
}

# API Gateway invokes this alias (packaging.py rewrites the swagger integrations to it), and
# provisioned concurrency can only be set on an alias or version.
resource "aws_lambda_alias" "live" {
  name             = "live"
  description      = "The version API Gateway invokes"
  function_name    = aws_lambda_function.api_handler.function_name
  function_version = aws_lambda_function.api_handler.version

  # Created on the first version; after that CodeDeploy moves it (make release-tf, deploy.tf),
  # hook and canary first. An apply that moved it would skip both.
  lifecycle {
    ignore_changes = [function_version, routing_config]
  }

  # An override file cannot add depends_on to Chalice's function; nothing invokes it before the
  # alias exists, so ordering the alias after the log group is enough.
  depends_on = [aws_cloudwatch_log_group.api_handler]
}

resource "aws_lambda_provisioned_concurrency_config" "live" {
  count = var.provisioned_concurrency > 0 ? 1 : 0

  function_name                     = aws_lambda_alias.live.function_name
  qualifier                         = aws_lambda_alias.live.name
  provisioned_concurrent_executions = var.provisioned_concurrency
}
