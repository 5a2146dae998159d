# Stateful resources. prevent_destroy makes a plan that would delete or replace them fail;
# the services' own deletion protection also guards against deletion outside Terraform.

# Key schema, attributes and the search indexes mirror chalicelib/adapters/table_schema.py (the
# tests compare them), which the repository code and the local stack use. The provider creates
# indexes one UpdateTable at a time, waiting for each, so one apply upgrades a table made with the
# earlier `listing` index alone (run `make reindex STAGE=...` after the release, docs/DEPLOY.md).
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

  attribute {
    name = "listState"
    type = "S"
  }

  attribute {
    name = "listCreated"
    type = "S"
  }

  attribute {
    name = "listName"
    type = "S"
  }

  attribute {
    name = "emailKey"
    type = "S"
  }

  # The earlier releases' index. Unread by this one, kept until the next, so that the previous
  # version, which serves until `make release-tf` has moved the alias, still lists users.
  global_secondary_index {
    name            = "listing"
    hash_key        = "listingId"
    projection_type = "ALL"
  }

  # Sparse: only user items carry listState, so each index holds users only, partitioned by
  # role#enabled and sorted by creation, name key or email key (GET /users).
  global_secondary_index {
    name            = "usersByCreated"
    hash_key        = "listState"
    range_key       = "listCreated"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "usersByName"
    hash_key        = "listState"
    range_key       = "listName"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "usersByEmail"
    hash_key        = "listState"
    range_key       = "emailKey"
    projection_type = "ALL"
  }

  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  # Idempotency records expire (TTL_ATTRIBUTE in chalicelib/adapters/table_schema.py); users never do.
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

  # Accounts are created by admins (POST /users makes the sign-in and its record); the invitation
  # carries a temporary password, changed at the first sign-in. Its text is ours only with SES:
  # Cognito refuses a custom email message on its own email (COGNITO_DEFAULT).
  admin_create_user_config {
    allow_admin_create_user_only = true

    dynamic "invite_message_template" {
      for_each = var.ses_identity_arn == "" ? [] : [1]

      content {
        email_subject = var.invitation_email_subject
        email_message = var.invitation_email_message
      }
    }
  }

  # A new email takes effect only once verified (infra/limits.json says why).
  user_attribute_update_settings {
    attributes_require_verification_before_update = local.limits.user_attribute_update_settings.AttributesRequireVerificationBeforeUpdate
  }

  # Cognito's own email by default (50 messages a day per account); an SES identity sends the rest.
  email_configuration {
    email_sending_account = var.ses_identity_arn == "" ? "COGNITO_DEFAULT" : "DEVELOPER"
    source_arn            = var.ses_identity_arn == "" ? null : var.ses_identity_arn
    from_email_address    = var.ses_identity_arn == "" || var.email_from == "" ? null : var.email_from
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
  write_attributes              = local.limits.user_pool_client.WriteAttributes

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

# The HMAC key that makes list cursors tamper-evident, generated by Secrets Manager during the
# apply: the ephemeral password and the write-only secret_string_wo keep it out of the plan and
# the state. Increment secret_string_wo_version to rotate it.
ephemeral "aws_secretsmanager_random_password" "cursor" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "cursor" {
  name        = var.cursor_secret_name
  description = "HMAC key that makes list cursors tamper-evident"
  tags        = var.tags

  # As in CloudFormation: destroying it would only schedule its deletion and block its name for
  # up to 30 days, so that a new stack of the same stage could not create it.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_secretsmanager_secret_version" "cursor" {
  secret_id                = aws_secretsmanager_secret.cursor.id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.cursor.random_password
  secret_string_wo_version = 1
}
