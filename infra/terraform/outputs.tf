output "ApiEndpoint" {
  # With a trailing slash, as the CloudFormation output: "${ApiEndpoint}users" works with both.
  description = "Base URL of the API stage, ending in /"
  value       = "${aws_api_gateway_stage.api.invoke_url}/"
}

output "UsersTableName" {
  value = aws_dynamodb_table.users.name
}

output "FunctionArn" {
  value = aws_lambda_function.api_handler.arn
}

output "UserPoolId" {
  value = aws_cognito_user_pool.users.id
}

output "UserPoolClientId" {
  value = aws_cognito_user_pool_client.api.id
}

output "CursorSecretArn" {
  value = aws_secretsmanager_secret.cursor.arn
}

output "AvatarBucketName" {
  value = aws_s3_bucket.avatars.bucket
}

output "AlarmTopicArn" {
  value = aws_sns_topic.alarms.arn
}

# Null (and so not shown) when the stage needs no key.
output "ApiKeyId" {
  description = "aws apigateway get-api-key --include-value --api-key <id>"
  value       = one(aws_api_gateway_api_key.client[*].id)
}
