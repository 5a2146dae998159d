"""The rehearsal's emulator: moto's server on loopback, with what CloudFormation does that moto's
CloudFormation does not, so that the real AWS CLI, Chalice and Terraform can deploy to it.

Patched here, each only as far as the rehearsal needs it (docs/DEPLOY.md, "What the rehearsal
cannot show", lists what stays out of reach):

- the `AWS::Serverless-2016-10-31` transform, expanded when a change set is created, with the SAM
  translator CloudFormation runs (aws-sam-translator);
- CloudFormation's capability check (InsufficientCapabilities for IAM resources without
  CAPABILITY_IAM, named ones without CAPABILITY_NAMED_IAM), which moto skips;
- a stack made by a change set gets the outputs of its template (moto builds them before the change
  set gives it one, so it would have none);
- a change set whose execution fails rolls the stack back (ROLLBACK_COMPLETE or
  UPDATE_ROLLBACK_COMPLETE, with the reason as an event) instead of answering HTTP 500;
- `Ref` to a Number parameter is a string, as in CloudFormation (moto keeps it a number, so a
  condition comparing it with "0" never held);
- a resource type nobody creates fails the stack, where moto would skip it with a warning and
  report CREATE_COMPLETE;
- the types moto's CloudFormation lacks are created by `infra.rehearsal.stand_ins`, and the
  properties it ignores on types it has are applied the same way;
- API Gateway's importer takes Swagger 2.0 (Chalice's API body), where moto takes OpenAPI 3 only:
  both have the same `paths` and integration keys, which is all moto reads (and MOCK integrations,
  which have no uri, are imported too, and a body without `info.description`);
- a template the CLI uploaded (`--s3-bucket`) is read from the emulator's S3 at its loopback address;
- a parameter kept with UsePreviousValue stays a string (moto hands a CommaDelimitedList back as a
  list, which its own parser cannot read);
- a stack's deletion deletes its REST API (moto's keeps it);
- CodeDeploy can delete a deployment group and an application (`terraform destroy` asks);
- AWS's managed IAM policies exist (moto loads them when asked), so templates may attach them.

Requests are served one at a time (moto's backends are not thread-safe), except the ones the
stand-ins make while a CloudFormation request is being served.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlparse

import yaml
from werkzeug.serving import BaseWSGIServer, make_server

from infra.rehearsal import stand_ins

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
IAM_TYPES = frozenset(
    {
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::User",
        "AWS::IAM::Group",
        "AWS::IAM::InstanceProfile",
        "AWS::IAM::AccessKey",
        "AWS::IAM::UserToGroupAddition",
    }
)
IAM_NAME_PROPERTIES = ("RoleName", "ManagedPolicyName", "UserName", "GroupName", "InstanceProfileName")
StartResponse = Callable[..., Any]


class _CloudFormationYamlLoader(yaml.SafeLoader):
    """YAML as CloudFormation reads it: `!Ref x` is {"Ref": "x"}, `!GetAtt a.b` is {"Fn::GetAtt": ["a", "b"]}."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_CloudFormationYamlLoader.add_multi_constructor("!", _intrinsic)


def parse_template(body: str) -> dict[str, Any]:
    """A template as CloudFormation reads it: JSON, or YAML with the short intrinsic forms."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = yaml.load(body, Loader=_CloudFormationYamlLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(parsed, dict):
        raise ValueError("a template is a JSON or YAML object")
    return parsed


def expand_sam(template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The SAM transform, as CloudFormation runs it on a change set (the template's CodeUri values are
    the S3 locations `aws cloudformation package` wrote)."""
    from samtranslator.translator.transform import transform

    class NoManagedPolicyNames:
        """Only consulted for policies named without an ARN; the templates name theirs by ARN."""

        def load(self) -> dict[str, str]:
            return {}

    values = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT_ID, "AWS::Partition": "aws", **parameters}
    expanded: dict[str, Any] = transform(template, values, NoManagedPolicyNames())
    return json.loads(json.dumps(expanded, default=str))


def required_capability(template: dict[str, Any]) -> str | None:
    """What CloudFormation asks of a template's IAM resources: CAPABILITY_NAMED_IAM if one has a
    custom name, CAPABILITY_IAM if there are any, else nothing."""
    iam = [r for r in template.get("Resources", {}).values() if r.get("Type") in IAM_TYPES]
    if any(name in r.get("Properties", {}) for r in iam for name in IAM_NAME_PROPERTIES):
        return "CAPABILITY_NAMED_IAM"
    return "CAPABILITY_IAM" if iam else None


def _patch_cloudformation() -> None:
    from moto.cloudformation import models, parsing, responses
    from moto.cloudformation.exceptions import CloudFormationError, ValidationError

    class InsufficientCapabilities(CloudFormationError):  # type: ignore[misc]
        code = "InsufficientCapabilitiesException"

        def __init__(self, capability: str) -> None:
            super().__init__(f"Requires capabilities : [{capability}]")

    original_from_s3 = responses.get_stack_from_s3_url

    def get_stack_from_s3_url(template_url: str, *args: Any, **kwargs: Any) -> str:
        # The CLI gives the emulator's own address as a path-style URL; moto reads only "localhost" that way.
        parts = urlparse(template_url)
        if parts.hostname in ("127.0.0.1", "::1"):
            template_url = parts._replace(netloc=f"localhost:{parts.port}").geturl()
        return str(original_from_s3(template_url, *args, **kwargs))

    responses.get_stack_from_s3_url = get_stack_from_s3_url

    original_response = responses.CloudFormationResponse.create_change_set

    def create_change_set_response(self: Any) -> Any:
        body = self._get_param("TemplateBody")
        if self._get_param("TemplateURL"):
            body = self._get_stack_from_s3_url(self._get_param("TemplateURL"))
        if body:
            template = parse_template(body)
            if template.get("Transform") == SAM_TRANSFORM:
                try:
                    template = expand_sam(template, {})
                except Exception as failure:
                    raise ValidationError(message=f"Transform {SAM_TRANSFORM} failed with: {failure}") from None
            needed = required_capability(template)
            granted = set(self._get_param("Capabilities") or [])
            if needed and not ({needed, "CAPABILITY_NAMED_IAM"} & granted):
                raise InsufficientCapabilities(needed)
        return original_response(self)

    responses.CloudFormationResponse.create_change_set = create_change_set_response

    original_create_change_set = models.CloudFormationBackend.create_change_set

    def create_change_set(self: Any, *args: Any, **kwargs: Any) -> Any:
        template = parse_template(kwargs["template"])
        if template.get("Transform") == SAM_TRANSFORM:
            kwargs["template"] = json.dumps(expand_sam(template, dict(kwargs.get("parameters") or {})))
        return original_create_change_set(self, *args, **kwargs)

    models.CloudFormationBackend.create_change_set = create_change_set

    original_execute = models.CloudFormationBackend.execute_change_set

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.change_sets.get(change_set_name) or next(
            (c for c in self.change_sets.values() if c.change_set_name == change_set_name), None
        )
        if change_set is None:
            raise ValidationError(stack_name)
        try:
            original_execute(self, change_set_name, stack_name)
        except Exception as failure:
            stack = self.stacks[change_set.stack_id]
            status = "ROLLBACK_COMPLETE" if change_set.change_set_type == "CREATE" else "UPDATE_ROLLBACK_COMPLETE"
            import traceback

            where = traceback.extract_tb(failure.__traceback__)[-1]
            reason = f"{type(failure).__name__}: {failure} ({where.filename}:{where.lineno})"
            stack._add_stack_event(status, resource_status_reason=reason)
            stack.status = status
            change_set.execution_status = "EXECUTE_FAILED"
            return
        # moto builds a stack's outputs when the stack is made, which for a change set is before it has
        # a template: build them from the template just applied.
        stack = self.stacks[change_set.stack_id]
        stack._parse_template()
        stack.output_map = stack._create_output_map()

    models.CloudFormationBackend.execute_change_set = execute_change_set

    original_class_from_type = parsing.resource_class_from_type

    def resource_class_from_type(resource_type: str) -> Any:
        found = stand_ins.STAND_INS.get(resource_type) or original_class_from_type(resource_type)
        if not found:
            raise ValidationError(message=f"the rehearsal's emulator cannot create {resource_type}")
        return found

    parsing.resource_class_from_type = resource_class_from_type
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()

    original_load_parameters = parsing.ResourceMap.load_parameters

    def load_parameters(self: Any) -> None:
        # CloudFormation's `Ref` to a parameter is a string, Number parameters too ("0", not 0), so a
        # condition comparing it with "0" holds; moto keeps defaults and Number values as numbers.
        original_load_parameters(self)
        for key, value in self.resolved_parameters.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.resolved_parameters[key] = str(value)
            elif isinstance(value, list):
                self.resolved_parameters[key] = [str(item) for item in value]
        self._parsed_resources.update(self.resolved_parameters)

    parsing.ResourceMap.load_parameters = load_parameters

    original_create_resource = parsing.parse_and_create_resource

    def parse_and_create_resource(logical_id: str, resource_json: dict[str, Any], resources_map: Any, **kw: Any) -> Any:
        resource = original_create_resource(logical_id, resource_json, resources_map, **kw)
        complete = stand_ins.COMPLETIONS.get(resource_json["Type"])
        if resource is not None and complete is not None:
            # Resolved as moto resolves a resource's own properties (a bucket's notification names its queue by GetAtt).
            complete(resource, parsing.clean_json(resource_json.get("Properties", {}), resources_map))
        return resource

    parsing.parse_and_create_resource = parse_and_create_resource


def _patch_apigateway() -> None:
    from moto.apigateway.models import APIGatewayBackend

    original = APIGatewayBackend.put_rest_api

    def put_rest_api(self: Any, function_id: str, api_doc: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if str(api_doc.get("swagger", "")).startswith("2."):
            api_doc = {key: value for key, value in api_doc.items() if key != "swagger"} | {"openapi": "3.0.1"}
        return original(self, function_id, api_doc, *args, **kwargs)

    APIGatewayBackend.put_rest_api = put_rest_api

    original_import = APIGatewayBackend.import_rest_api

    def import_rest_api(self: Any, api_doc: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        # `info.description` is optional (Chalice's body has none); moto's importer requires it.
        info = {"description": "", **api_doc.get("info", {})}
        return original_import(self, {**api_doc, "info": info}, *args, **kwargs)

    APIGatewayBackend.import_rest_api = import_rest_api

    original_integration_args = APIGatewayBackend._build_integration_args

    def integration_args(self: Any, integration: dict[str, Any]) -> dict[str, Any]:
        # A MOCK integration (the CORS preflight) has no uri and no method; moto's importer needs both.
        args: dict[str, Any] = original_integration_args(self, integration)
        return {**args, "uri": args["uri"] or "", "integration_method": args["integration_method"] or ""}

    APIGatewayBackend._build_integration_args = integration_args

    from moto.apigateway.models import RestAPI, apigateway_backends

    def delete(self: Any, account_id: str, region_name: str) -> None:
        # moto's RestAPI has no CloudFormation delete: a deleted stack would leave its API behind.
        apigateway_backends[account_id][region_name].apis.pop(self.id, None)

    RestAPI.delete = delete


_PATCHED = False


def _patch_previous_values() -> None:
    """A parameter kept with UsePreviousValue (`aws cloudformation deploy` keeps every parameter it
    is not given) is handed back as moto stored it: a CommaDelimitedList as a list, which moto's
    parser then fails to split. CloudFormation keeps the string; so does this."""
    from moto.cloudformation.models import CloudFormationBackend

    original = CloudFormationBackend._resolve_update_parameters

    def resolve(self: Any, instance: Any, incoming_params: list[dict[str, str]]) -> dict[str, str]:
        resolved = original(self, instance, incoming_params)
        return {key: ",".join(value) if isinstance(value, list) else value for key, value in resolved.items()}

    CloudFormationBackend._resolve_update_parameters = resolve

    original_change_set = CloudFormationBackend.create_change_set

    def create_change_set(self: Any, *args: Any, **kwargs: Any) -> Any:
        # The change set's parameters: moto's response reads a kept one from the stack as stored.
        if isinstance(kwargs.get("parameters"), dict):
            kwargs["parameters"] = {
                key: ",".join(value) if isinstance(value, list) else value
                for key, value in kwargs["parameters"].items()
            }
        return original_change_set(self, *args, **kwargs)

    CloudFormationBackend.create_change_set = create_change_set


def _patch_codedeploy() -> None:
    """moto's CodeDeploy cannot delete a deployment group or an application, which `terraform
    destroy` asks (and then waits for the group to be gone): both are added, as CodeDeploy answers."""
    from moto.codedeploy.responses import CodeDeployResponse

    def delete_deployment_group(self: Any) -> str:
        groups = self.codedeploy_backend.deployment_groups.get(self._get_param("applicationName"), {})
        groups.pop(self._get_param("deploymentGroupName"), None)
        return json.dumps({"hooksNotCleanedUp": []})

    def delete_application(self: Any) -> str:
        name = self._get_param("applicationName")
        self.codedeploy_backend.deployment_groups.pop(name, None)
        self.codedeploy_backend.applications.pop(name, None)
        return "{}"

    CodeDeployResponse.delete_deployment_group = delete_deployment_group
    CodeDeployResponse.delete_application = delete_application


def apply_patches() -> None:
    global _PATCHED
    if _PATCHED:
        return
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)  # the SAM translator's ARNs name it
    _patch_cloudformation()
    _patch_apigateway()
    _patch_codedeploy()
    _patch_previous_values()
    _PATCHED = True


class _Serialized:
    """One request at a time, except the stand-ins' own (made while a CloudFormation request holds the lock)."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]):
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if environ.get(stand_ins.PROVIDER_HEADER_ENVIRON):
            return self._serve(environ, start_response)
        with self._lock:
            return self._serve(environ, start_response)

    def _serve(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        result = self._app(environ, start_response)
        try:
            return [b"".join(result)]
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


class Emulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        apply_patches()
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        class QuietHandler(MotoRequestHandler):  # type: ignore[misc]
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                """The commands' own output is the rehearsal's log."""

        self._server: BaseWSGIServer = make_server(
            host,
            port,
            _Serialized(DomainDispatcherApplication(create_backend_app)),
            threaded=True,
            request_handler=QuietHandler,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> Emulator:
        stand_ins.ENDPOINT[0] = self.url
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    """`python -m infra.rehearsal.emulator`: serve until stdin closes; prints the URL first."""
    import sys

    emulator = Emulator().start()
    print(emulator.url, flush=True)
    sys.stdin.read()
    emulator.stop()


if __name__ == "__main__":
    main()
