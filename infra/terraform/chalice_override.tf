# Merged by Terraform into the blocks of the same name in Chalice's chalice.tf.json (a file whose
# name ends in _override.tf). Arguments here replace Chalice's; a nested block replaces Chalice's
# block of that type whole, which is why `environment` restates the stage's variables.

terraform {
  # Replaces Chalice's ">= 3.61.0, < 5" for aws: DynamoDB deletion_protection_enabled, Cognito
  # deletion_protection and the WAF body oversize_handling need a 2023 4.x release, and 4.67 is
  # the last 4.x. Lifecycle preconditions (waf.tf) need Terraform 1.2; Chalice caps it below 1.4.
  required_version = ">= 1.2.0, < 1.4.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 4.67, < 5"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.1, < 4"
    }
  }
}

resource "aws_lambda_function" "api_handler" {
  # Each change publishes a version for the live alias, so API traffic and provisioned
  # concurrency move to new code together.
  publish = true

  environment {
    variables = merge(var.lambda_environment, {
      USER_POOL_ID        = aws_cognito_user_pool.users.id
      USER_POOL_CLIENT_ID = aws_cognito_user_pool_client.api.id
      USER_POOL_ARN       = aws_cognito_user_pool.users.arn
      CURSOR_SECRET_ARN   = aws_secretsmanager_secret.cursor.arn
      AVATAR_BUCKET       = aws_s3_bucket.avatars.bucket
    })
  }
}

resource "aws_iam_role" "api_handler_role" {
  tags = var.tags
}

resource "aws_api_gateway_rest_api" "rest_api" {
  # Chalice names every stage's API after the app; one name per stage tells them apart and is
  # the ApiName dimension the alarms watch.
  name = var.api_name
  tags = var.tags
}

resource "aws_api_gateway_deployment" "rest_api" {
  # The stage is aws_api_gateway_stage.api (api.tf), so it can carry logging, caching and WAF.
  stage_name        = null
  stage_description = null

  # A new deployment snapshot whenever what it captures changes: the swagger and the gateway
  # responses (these are API settings, not stage settings, so they only go live with a deployment).
  triggers = {
    redeployment = md5(jsonencode([
      local.chalice_api_swagger,
      { for kind, response in aws_api_gateway_gateway_response.api : kind => [
        response.status_code, response.response_templates, response.response_parameters
      ] },
    ]))
  }

  # Chalice sets this too; restated because the stage must move to the new deployment before
  # the old one can be deleted.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lambda_permission" "rest_api_invoke" {
  # The swagger integrations invoke the alias, and a permission on the unqualified function
  # does not cover a qualified invocation.
  function_name = aws_lambda_function.api_handler.function_name
  qualifier     = aws_lambda_alias.live.name
}

output "EndpointURL" {
  value = aws_api_gateway_stage.api.invoke_url
}
