"""EMULATOR EXTENSION: IAM policy enforcement on the resources AWS authorizes against.

moto 5.2.5 enforces the caller's IAM policies once ``INITIAL_NO_AUTH_ACTION_COUNT`` calls have
been served (an environment variable read when moto is imported; unset, nothing is enforced), and
it does so for cognito-idp, cognito-identity and IAM alike. But, as probed:

* it authorizes every Cognito, Secrets Manager and EventBridge call against Resource ``"*"``: a statement
  scoped to ``arn:aws:cognito-idp:*:<account>:userpool/*`` never matches, so a least-privilege
  policy is refused everything;
* it authorizes an IAM call on a role that does not exist yet (CreateRole, and the GetRole that
  looks before creating) against ``"*"`` as well;
* it never sees the calls this emulator answers itself (SetIdentityPoolRoles and the others in
  cognito_identity.py / cognito_idp.py), nor the ``iam:PassRole`` AWS requires of whoever hands a
  role to an identity pool;
* it answers a denied JSON-protocol call with an XML 403, from which botocore gets the code "403".

``install()`` gives moto's Cognito, Secrets Manager and IAM responses the resource ARN AWS uses:
the pool named by ``UserPoolId``/``IdentityPoolId``/``ResourceArn``; the secret named by ``Name``
or ``SecretId`` (``arn:...:secret:<name>``, which a ``secret:<prefix>/*`` pattern matches as it
matches the real ARN's random suffix); for PutEvents the event bus (``arn:...:event-bus/<name>``); for CreateRole the ARN the role will have (its ``Path``
included); for a role that does not exist, ``arn:...:role/<name>`` (no path is known).
``authorize()`` lets the middleware check each JSON-protocol call first, hooked ones included,
with ``iam:PassRole`` (``iam:PassedToService`` = cognito-identity.amazonaws.com) for every role
SetIdentityPoolRoles passes, and answers a denial as AWS does: ``AccessDeniedException``.

Conditions other than ``StringEquals`` on values the request supplies are not evaluated (moto
ignores them): ``aws:ResourceTag``, ``aws:RequestTag`` and ``iam:PermissionsBoundary`` conditions
in deploy/iam-policy.json are checked by reading the policy (tests/unit/test_iam_policy_file.py),
not by the emulator.
"""

from __future__ import annotations

import json
from typing import Any

from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import HTTPException
from moto.utilities.utils import get_partition
from werkzeug.datastructures import EnvironHeaders

from .protocol import AwsError

_PASSED_TO = "cognito-identity.amazonaws.com"
# JSON-protocol services call the query-protocol errors moto raises by other names.
_JSON_CODES = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}
_SERVICES = {
    "AWSCognitoIdentityProviderService": "cognito-idp",
    "AWSCognitoIdentityService": "cognito-identity",
    "secretsmanager": "secretsmanager",
    "AWSEvents": "events",
}
_installed = False


def enforcing() -> bool:
    """True once moto has served its INITIAL_NO_AUTH_ACTION_COUNT unauthorized calls."""
    return bool(ActionAuthenticatorMixin.request_count >= moto_settings.INITIAL_NO_AUTH_ACTION_COUNT)


def json_resource(service: str, params: dict[str, Any], region: str, account_id: str) -> str:
    """The ARN AWS authorizes a JSON-protocol call against, or "*" for calls on no resource
    (CreateUserPool, ListUserPools, DescribeUserPoolDomain, CreateIdentityPool, ListSecrets, ...)."""
    partition = get_partition(region)
    if service == "events":
        # PutEvents is authorized on the bus (the first entry's; the service sends one bus per call).
        entries = params.get("Entries")
        first = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}
        bus = first.get("EventBusName") or "default"
        if not isinstance(bus, str):
            return "*"
        return bus if bus.startswith("arn:") else f"arn:{partition}:events:{region}:{account_id}:event-bus/{bus}"
    if service == "secretsmanager":
        secret = params.get("SecretId") or params.get("Name")
        if not isinstance(secret, str):
            return "*"
        return secret if secret.startswith("arn:") else f"arn:{partition}:secretsmanager:{region}:{account_id}:secret:{secret}"
    if isinstance(params.get("ResourceArn"), str):
        return str(params["ResourceArn"])
    if service == "cognito-idp" and isinstance(params.get("UserPoolId"), str):
        return f"arn:{partition}:cognito-idp:{region}:{account_id}:userpool/{params['UserPoolId']}"
    if service == "cognito-identity" and isinstance(params.get("IdentityPoolId"), str):
        return f"arn:{partition}:cognito-identity:{region}:{account_id}:identitypool/{params['IdentityPoolId']}"
    return "*"


def install() -> None:
    """Give moto's Cognito, Secrets Manager and IAM responses AWS's resource ARNs (idempotent). Only
    authorization reads them, so nothing changes until enforcement starts."""
    global _installed
    if _installed:
        return
    from moto.cognitoidentity.responses import CognitoIdentityResponse
    from moto.cognitoidp.responses import CognitoIdpResponse
    from moto.events.responses import EventsHandler
    from moto.iam.exceptions import NotFoundException
    from moto.iam.responses import IamResponse
    from moto.secretsmanager.responses import SecretsManagerResponse

    def json_protocol(service: str) -> Any:
        def _determine_resource(self: Any) -> str:
            try:
                params = json.loads(self.body or "{}")
            except (TypeError, ValueError):
                return "*"
            return json_resource(service, params if isinstance(params, dict) else {}, self.region, self.current_account)

        return _determine_resource

    def iam_resource(self: Any) -> str:
        name = (self.data.get("RoleName") or [None])[0]
        if not name:
            return "*"
        prefix = f"arn:{self.partition}:iam::{self.current_account}:role"
        if self._get_action() == "CreateRole":
            return f"{prefix}{(self.data.get('Path') or ['/'])[0]}{name}"
        try:
            return str(self.backend.get_role(name).arn)
        except NotFoundException:
            return f"{prefix}/{name}"

    CognitoIdpResponse._determine_resource = json_protocol("cognito-idp")  # type: ignore[attr-defined]
    CognitoIdentityResponse._determine_resource = json_protocol("cognito-identity")  # type: ignore[attr-defined]
    SecretsManagerResponse._determine_resource = json_protocol("secretsmanager")  # type: ignore[attr-defined]
    EventsHandler._determine_resource = json_protocol("events")  # type: ignore[attr-defined]
    IamResponse._determine_resource = iam_resource  # type: ignore[method-assign]
    _installed = True


def _permitted(access_key: Any, action: str, resource: str, conditions: dict[str, str]) -> bool:
    """moto's evaluation (an explicit Deny wins, else some Allow is needed), for an action the
    request implies rather than names."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    permitted = False
    for policy in access_key.collect_policies():
        result = IAMPolicy(policy).is_action_permitted(action, resource, incoming_condition_values=conditions)
        if result == PermissionResult.DENIED:
            return False
        permitted = permitted or result == PermissionResult.PERMITTED
    return permitted


def authorize(environ: dict[str, Any], raw: bytes, target: str, params: dict[str, Any], region: str, account_id: str) -> AwsError | None:
    """Check one JSON-protocol call against the caller's policies; the error to answer with, or
    None when it is allowed (or enforcement has not started)."""
    if not enforcing() or target in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
        return None
    prefix, _, action = target.partition(".")
    service = _SERVICES.get(prefix)
    if service is None:
        return None  # not a service this module knows the resources of: moto decides alone
    from moto.iam.access_control import IAMRequest

    headers = EnvironHeaders(environ)
    if "Authorization" not in headers:
        return AwsError("MissingAuthenticationTokenException", "Missing Authentication Token")
    path = environ.get("PATH_INFO") or "/"
    if environ.get("QUERY_STRING"):
        path += "?" + environ["QUERY_STRING"]
    resource = json_resource(service, params, region, account_id)
    try:
        request = IAMRequest(
            account_id=account_id, method=environ["REQUEST_METHOD"], path=path, data={}, body=raw, headers=headers, action=action
        )
        request.check_signature()
        request.check_action_permitted(resource)
        if target == "AWSCognitoIdentityService.SetIdentityPoolRoles":
            roles = params.get("Roles") if isinstance(params.get("Roles"), dict) else {}
            for role_arn in roles.values():
                if isinstance(role_arn, str) and not _permitted(
                    request._access_key, "iam:PassRole", role_arn, {"iam:PassedToService": _PASSED_TO}
                ):
                    return AwsError(
                        "AccessDeniedException",
                        f"User: {request._access_key.arn} is not authorized to perform: iam:PassRole on resource: {role_arn}",
                    )
    except HTTPException as denied:
        code = str(getattr(denied, "error_type", "AccessDenied"))
        message = str(getattr(denied, "message", "Access denied"))
        if code == "AccessDenied":
            message += f" on resource: {resource}"
        return AwsError(_JSON_CODES.get(code, code), message)
    return None
