# Avatars: browsers upload (presigned POST) and read (presigned GET) directly; the function only
# signs, checks and deletes. Mirrors AvatarBucket in infra/cloudformation.py.

data "aws_caller_identity" "current" {}

resource "aws_s3_bucket" "avatars" {
  # Bucket names are global: the account id makes this one unique, and the role policy
  # (.chalice/policy-<stage>.json) names it with the ${aws:PrincipalAccount} policy variable.
  bucket = "${var.avatar_bucket_prefix}${data.aws_caller_identity.current.account_id}"
  tags   = var.tags

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_public_access_block" "avatars" {
  bucket                  = aws_s3_bucket.avatars.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs off: the bucket owner owns every object, whoever uploads it.
resource "aws_s3_bucket_ownership_controls" "avatars" {
  bucket = aws_s3_bucket.avatars.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# SSE-S3, not KMS: every presigned upload and download would otherwise also be a KMS request
# (and need kms:* rights for the role), for no gain in who can read the images.
resource "aws_s3_bucket_server_side_encryption_configuration" "avatars" {
  bucket = aws_s3_bucket.avatars.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# No versioning resource: the bucket stays unversioned, so deleting a user really deletes the
# avatar (a versioned bucket would keep it as a noncurrent version).

resource "aws_s3_bucket_cors_configuration" "avatars" {
  bucket = aws_s3_bucket.avatars.id

  cors_rule {
    allowed_origins = [var.cors_allow_origin]
    allowed_methods = local.limits.avatar_bucket.cors_methods
    expose_headers  = ["ETag"]
    max_age_seconds = local.limits.avatar_bucket.cors_max_age_seconds
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "avatars" {
  bucket = aws_s3_bucket.avatars.id

  rule {
    id     = "AbortIncompleteMultipartUploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = local.limits.avatar_bucket.abort_incomplete_multipart_days
    }
  }

  # The bulk jobs' files (jobs.tf): an import file goes once its rows are queued, within a day at most;
  # an export goes with its job.
  rule {
    id     = "ExpireImportFiles"
    status = "Enabled"

    filter {
      prefix = "imports/"
    }

    expiration {
      days = local.limits.bulk_jobs.import_file_days
    }
  }

  rule {
    id     = "ExpireExportFiles"
    status = "Enabled"

    filter {
      prefix = "exports/"
    }

    expiration {
      days = local.limits.bulk_jobs.export_file_days
    }
  }
}

resource "aws_s3_bucket_policy" "avatars" {
  bucket = aws_s3_bucket.avatars.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.avatars.arn, "${aws_s3_bucket.avatars.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "Tls12OrLater"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.avatars.arn, "${aws_s3_bucket.avatars.arn}/*"]
        Condition = { NumericLessThan = { "s3:TlsVersion" = "1.2" } }
      },
    ]
  })

  # One bucket-level change at a time: concurrent ones can fail with OperationAborted.
  depends_on = [aws_s3_bucket_public_access_block.avatars]
}
