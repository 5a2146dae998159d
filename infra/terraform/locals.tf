locals {
  # Every number and fixed shape is stated once, in limits.json, which the CloudFormation build reads too.
  limits = jsondecode(file("${path.module}/limits.json"))

  # Stage method settings address a method as "<path without the leading slash>/<METHOD>".
  cached_routes = {
    for route in local.limits.cache.routes : "${trimprefix(route.path, "/")}/${route.method}" => route
  }
}

data "aws_partition" "current" {}
