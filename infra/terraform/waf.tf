resource "aws_wafv2_web_acl" "api" {
  count = var.waf ? 1 : 0

  name        = var.api_name
  description = "Rate limit, body size and AWS managed rules in front of ${var.api_name}"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  custom_response_body {
    key          = "too-many-requests"
    content      = jsonencode({ error = "Too many requests" })
    content_type = "APPLICATION_JSON"
  }

  custom_response_body {
    key          = "too-large"
    content      = jsonencode({ error = "Request body too large" })
    content_type = "APPLICATION_JSON"
  }

  rule {
    name     = "RateLimitPerIp"
    priority = 0

    action {
      block {
        custom_response {
          response_code            = 429
          custom_response_body_key = "too-many-requests"
        }
      }
    }

    statement {
      rate_based_statement {
        limit                 = local.limits.waf.rate_limit_per_ip
        evaluation_window_sec = local.limits.waf.rate_window_seconds
        aggregate_key_type    = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "RateLimitPerIp"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "BodySizeLimit"
    priority = 1

    action {
      block {
        custom_response {
          response_code            = 413
          custom_response_body_key = "too-large"
        }
      }
    }

    statement {
      size_constraint_statement {
        comparison_operator = "GT"
        size                = local.limits.waf.max_body_bytes

        # WAF inspects only the first part of a body; MATCH makes a longer body match (and be
        # blocked) instead of passing the rules below uninspected.
        field_to_match {
          body {
            oversize_handling = "MATCH"
          }
        }

        text_transformation {
          priority = 0
          type     = "NONE"
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "BodySizeLimit"
      sampled_requests_enabled   = true
    }
  }

  dynamic "rule" {
    for_each = length(var.geo_block_countries) > 0 ? [var.geo_block_countries] : []

    content {
      name     = "GeoBlock"
      priority = 2

      action {
        block {}
      }

      statement {
        geo_match_statement {
          country_codes = rule.value
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "GeoBlock"
        sampled_requests_enabled   = true
      }
    }
  }

  dynamic "rule" {
    for_each = local.limits.waf.managed_rule_groups

    content {
      name     = rule.value
      priority = 10 + rule.key

      # The group's own actions apply (none of its rules is switched to count).
      override_action {
        none {}
      }

      statement {
        managed_rule_group_statement {
          name        = rule.value
          vendor_name = "AWS"
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = rule.value
        sampled_requests_enabled   = true
      }
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.api_name
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

resource "aws_wafv2_web_acl_association" "api" {
  count = var.waf ? 1 : 0

  resource_arn = aws_api_gateway_stage.api.arn
  web_acl_arn  = aws_wafv2_web_acl.api[0].arn
}

# WAF only delivers to log groups whose name starts with aws-waf-logs-.
resource "aws_cloudwatch_log_group" "waf" {
  count = var.waf ? 1 : 0

  name              = "aws-waf-logs-${var.api_name}"
  retention_in_days = var.api_log_retention_days
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "api" {
  count = var.waf ? 1 : 0

  resource_arn            = aws_wafv2_web_acl.api[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]

  # Credentials never reach the logs: the bearer token and the API key.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  redacted_fields {
    single_header {
      name = "x-api-key"
    }
  }
}
