# Stateful resources. prevent_destroy makes a plan that would delete or replace them fail;
# the services' own deletion protection also guards against deletion outside Terraform.

# Key schema, attributes and the `listing` index mirror chalicelib/table_schema.py (the tests
# compare them), which the repository code and the local stack use.
resource "aws_dynamodb_table" "users" {
  name         = var.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "userId"

  attribute {
    name = "userId"
    type = "S"
  }

  attribute {
    name = "listingId"
    type = "S"
  }

  # Sparse: only users carry listingId, so a page of the index is a page of users.
  global_secondary_index {
    name            = "listing"
    hash_key        = "listingId"
    projection_type = "ALL"
  }

  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  # Idempotency records expire (TTL_ATTRIBUTE in chalicelib/table_schema.py); users never do.
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

resource "aws_cognito_user_pool" "users" {
  name                     = var.user_pool_name
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  deletion_protection      = "ACTIVE"

  username_configuration {
    case_sensitive = false
  }

  schema {
    name                = "email"
    attribute_data_type = "String"
    required            = true
    mutable             = true

    # The limits Cognito reports for the standard attribute; without them every plan shows a diff.
    string_attribute_constraints {
      min_length = 0
      max_length = 2048
    }
  }

  password_policy {
    minimum_length                   = local.limits.password_policy.MinimumLength
    require_uppercase                = local.limits.password_policy.RequireUppercase
    require_lowercase                = local.limits.password_policy.RequireLowercase
    require_numbers                  = local.limits.password_policy.RequireNumbers
    require_symbols                  = local.limits.password_policy.RequireSymbols
    temporary_password_validity_days = local.limits.password_policy.TemporaryPasswordValidityDays
  }

  # Accounts are created by admins; nobody signs themselves up.
  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  mfa_configuration = "OPTIONAL"

  software_token_mfa_configuration {
    enabled = true
  }

  tags = var.tags

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_cognito_user_pool_client" "api" {
  name         = var.api_name
  user_pool_id = aws_cognito_user_pool.users.id

  # A public client (browsers, CLIs): a secret could not be kept.
  generate_secret               = false
  explicit_auth_flows           = local.limits.user_pool_client.ExplicitAuthFlows
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true
  read_attributes               = local.limits.user_pool_client.ReadAttributes

  access_token_validity  = 60
  id_token_validity      = 60
  refresh_token_validity = 30

  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }
}

resource "aws_cognito_user_group" "admins" {
  name         = "admins" # chalicelib.config.ADMIN_GROUP
  description  = "May manage every user"
  user_pool_id = aws_cognito_user_pool.users.id
}

# The HMAC key that makes list cursors tamper-evident. Its value is in the Terraform state, so
# the state must live in an encrypted remote backend with restricted access.
resource "random_password" "cursor_secret" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "cursor" {
  name        = var.cursor_secret_name
  description = "HMAC key that makes list cursors tamper-evident"
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "cursor" {
  secret_id     = aws_secretsmanager_secret.cursor.id
  secret_string = random_password.cursor_secret.result
}
