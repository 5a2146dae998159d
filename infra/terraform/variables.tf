# Values come from stage.auto.tfvars.json, written by infra/terraform_vars.py from the same
# stage settings the CloudFormation build reads, so the two formats cannot drift apart.

variable "stage" {
  description = "Chalice stage (dev, staging, prod)."
  type        = string
}

variable "api_stage" {
  description = "API Gateway stage name; part of every URL."
  type        = string
}

variable "function_name" {
  description = "Name Chalice gives the function; the role's log permission names it too."
  type        = string
}

variable "api_name" {
  description = "REST API name; also the CloudWatch ApiName dimension the alarms watch."
  type        = string
}

variable "table_name" {
  description = "DynamoDB users table; the role policy names it."
  type        = string
}

variable "avatar_bucket_prefix" {
  description = "Avatar bucket name without the account id that ends it; the role policy names the same bucket."
  type        = string
}

variable "user_pool_name" {
  type = string
}

variable "ses_identity_arn" {
  description = "A verified SES identity the pool sends its mail (the invitation) with; empty: Cognito's own email (50 messages a day per account, Cognito's own invitation text)."
  type        = string
  default     = ""

  validation {
    condition     = var.ses_identity_arn == "" || can(regex("^arn:aws[a-z-]*:ses:[a-z0-9-]+:[0-9]{12}:identity/\\S+$", var.ses_identity_arn))
    error_message = "ses_identity_arn must be empty or the ARN of an SES identity."
  }
}

variable "email_from" {
  description = "With ses_identity_arn: the From of the pool's mail, e.g. \"Users API <no-reply@example.com>\"; empty: the identity's address."
  type        = string
  default     = ""
}

variable "invitation_email_subject" {
  description = "The invitation's subject, from limits.json (infra/invitation.py); sent only with ses_identity_arn."
  type        = string
}

variable "invitation_email_message" {
  description = "The invitation's text, from limits.json with the temporary password's validity written in (infra/invitation.py)."
  type        = string
}

variable "cursor_secret_name" {
  description = "Secrets Manager name of the list-cursor key; the role policy names it."
  type        = string
}

variable "audit_table_name" {
  description = "DynamoDB table of change history entries; the role policies name it."
  type        = string
}

variable "event_bus_name" {
  description = "EventBridge bus the change consumer publishes to; its role policy names it."
  type        = string
}

variable "consumer_function_name" {
  description = "Name of the stream consumer (app.py user_changes); its role's log permission names it."
  type        = string
}

variable "dead_letter_queue_name" {
  description = "SQS queue that receives what the consumer's mapping gave up on; its role policy names it."
  type        = string
}

variable "worker_function_name" {
  description = "Name of the bulk jobs worker (app.py bulk_jobs); its role's log permission names it."
  type        = string
}

variable "jobs_table_name" {
  description = "DynamoDB table of bulk jobs and their row outcomes; the role policies name it."
  type        = string
}

variable "jobs_queue_name" {
  description = "SQS queue of bulk job messages, which the worker reads; the role policies name it."
  type        = string
}

variable "jobs_dead_letter_queue_name" {
  description = "SQS queue of the job messages the worker gave up on."
  type        = string
}

variable "cors_allow_origin" {
  description = "The single origin allowed by CORS, repeated on API Gateway's own error responses."
  type        = string

  validation {
    condition     = var.cors_allow_origin != "*"
    error_message = "A deployed stage names its origin; '*' is for local stages only."
  }
}

variable "require_api_key" {
  description = "Whether /users routes need an API key; it must match REQUIRE_API_KEY, which shaped the swagger."
  type        = bool
}

variable "api_cache" {
  description = "Provision the stage cache cluster (billed per hour) for the routes in limits.json."
  type        = bool
}

variable "waf" {
  description = "Attach a WAF web ACL to the stage."
  type        = bool
}

variable "provisioned_concurrency" {
  description = "Provisioned concurrency on the live alias; 0 turns it off (it is billed per hour)."
  type        = number

  validation {
    condition     = var.provisioned_concurrency >= 0 && floor(var.provisioned_concurrency) == var.provisioned_concurrency
    error_message = "provisioned_concurrency must be a whole number, 0 or more."
  }
}

variable "traffic_shifting" {
  description = "CodeDeploy's Lambda deployment configuration for the live alias, without its prefix (AllAtOnce, Canary10Percent5Minutes, ...)."
  type        = string
}

variable "api_log_retention_days" {
  type = number
}

variable "lambda_log_retention_days" {
  type = number
}

variable "lambda_environment" {
  description = "The stage's Chalice environment variables; the deployed resource ids are added to them."
  type        = map(string)
}

variable "tags" {
  type = map(string)
}

variable "alarm_email" {
  description = "Optional address subscribed to the alarm topic (it must confirm the subscription)."
  type        = string
  default     = ""

  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@\\s]+@[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be empty or an email address."
  }
}

variable "geo_block_countries" {
  description = "ISO 3166 alpha-2 country codes the web ACL blocks; empty leaves the geo rule out."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for code in var.geo_block_countries : can(regex("^[A-Z]{2}$", code))])
    error_message = "geo_block_countries takes two-letter upper-case country codes."
  }
}
