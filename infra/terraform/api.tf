resource "aws_cloudwatch_log_group" "api_access" {
  name              = "/aws/apigateway/${var.api_name}"
  retention_in_days = var.api_log_retention_days
  tags              = var.tags
}

# API Gateway writes its logs through one CloudWatch role per account and region, not per API:
# another stack in the same account and region sets the same setting, and deleting this role
# breaks logging for every API that relies on it.
resource "aws_iam_role" "api_gateway_cloudwatch" {
  name_prefix = "apigw-cloudwatch-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "apigateway.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "api_gateway_cloudwatch" {
  role       = aws_iam_role.api_gateway_cloudwatch.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  cloudwatch_role_arn = aws_iam_role.api_gateway_cloudwatch.arn

  depends_on = [aws_iam_role_policy_attachment.api_gateway_cloudwatch]
}

resource "aws_api_gateway_stage" "api" {
  rest_api_id          = aws_api_gateway_rest_api.rest_api.id
  deployment_id        = aws_api_gateway_deployment.rest_api.id
  stage_name           = var.api_stage
  xray_tracing_enabled = true

  cache_cluster_enabled = var.api_cache
  cache_cluster_size    = var.api_cache ? local.limits.cache.cluster_size_gb : null

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format          = jsonencode(local.limits.access_log_format)
  }

  tags = var.tags

  # Access logging is refused until the account has a CloudWatch role.
  depends_on = [aws_api_gateway_account.this]
}

# Execution logs (logging_level below) go to this group, which API Gateway would otherwise
# create itself, without retention.
resource "aws_cloudwatch_log_group" "api_execution" {
  name              = "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.rest_api.id}/${var.api_stage}"
  retention_in_days = var.api_log_retention_days
  tags              = var.tags
}

resource "aws_api_gateway_method_settings" "all" {
  rest_api_id = aws_api_gateway_rest_api.rest_api.id
  stage_name  = aws_api_gateway_stage.api.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled = true
    logging_level   = "ERROR"
    # Data traces would log request and response bodies: user data.
    data_trace_enabled     = false
    throttling_burst_limit = local.limits.stage_throttle.burst_limit
    throttling_rate_limit  = local.limits.stage_throttle.rate_limit
    # Off by default: see limits.json cache._why. Only the routes below are cached.
    caching_enabled      = false
    cache_data_encrypted = true
  }

  depends_on = [aws_cloudwatch_log_group.api_execution]
}

# Responses that are the same for every caller; the TTLs match the app's Cache-Control max-age.
resource "aws_api_gateway_method_settings" "cached" {
  for_each = local.cached_routes

  rest_api_id = aws_api_gateway_rest_api.rest_api.id
  stage_name  = aws_api_gateway_stage.api.stage_name
  method_path = each.key

  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false
    throttling_burst_limit = local.limits.stage_throttle.burst_limit
    throttling_rate_limit  = local.limits.stage_throttle.rate_limit
    caching_enabled        = var.api_cache
    cache_ttl_in_seconds   = each.value.ttl_seconds
    cache_data_encrypted   = true
  }

  depends_on = [aws_cloudwatch_log_group.api_execution]
}

# Clients of /users present a key of this plan when the stage requires one (REQUIRE_API_KEY).
resource "aws_api_gateway_usage_plan" "api" {
  count = var.require_api_key ? 1 : 0

  name        = var.api_name
  description = "Clients of the users API: throttled and with a daily quota"

  api_stages {
    api_id = aws_api_gateway_rest_api.rest_api.id
    stage  = aws_api_gateway_stage.api.stage_name
  }

  throttle_settings {
    burst_limit = local.limits.usage_plan.burst_limit
    rate_limit  = local.limits.usage_plan.rate_limit
  }

  quota_settings {
    limit  = local.limits.usage_plan.quota_limit
    period = local.limits.usage_plan.quota_period
  }

  tags = var.tags
}

resource "aws_api_gateway_api_key" "client" {
  count = var.require_api_key ? 1 : 0

  name        = "${var.api_name}-client"
  description = "Client key for ${var.api_name}"
  enabled     = true
  tags        = var.tags
}

resource "aws_api_gateway_usage_plan_key" "client" {
  count = var.require_api_key ? 1 : 0

  key_id        = aws_api_gateway_api_key.client[0].id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.api[0].id
}
