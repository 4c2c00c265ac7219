"""Checks what the host hands out with independent implementations.

Reads one JSON request on stdin, writes one JSON answer on stdout; a check that fails
raises, so the process exits non-zero with the library's own error on stderr.

  {"check": "totp", "uri": "otpauth://..."}
      -> {"code": "123456"}                  pyotp's current code for the URI
  {"check": "standard-webhooks", "secret": "whsec_...", "headers": {...}, "body": "..."}
      -> {"payload": ...}                    the body, once standardwebhooks verified it
  {"check": "cloudevents", "headers": {...}, "body": "..."}
      -> {"attributes": {...}, "data": ...}  the event the CloudEvents SDK read
  {"check": "oauth2", "host": "http://...", "access_token": "...", "user": "usr_..."}
      -> what authlib's client got from an RFC 8693 token exchange for the user, RFC 7662
         introspection before and after RFC 7009 revocation, and an exchange of a bad token
"""

import json
import sys

import pyotp
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from cloudevents.v1.http import from_http
from standardwebhooks.webhooks import Webhook


def totp(request):
    otp = pyotp.parse_uri(request["uri"])
    return {"code": otp.now(), "issuer": otp.issuer, "name": otp.name}


def standard_webhooks(request):
    payload = Webhook(request["secret"]).verify(request["body"], request["headers"])
    return {"payload": payload}


def cloudevents(request):
    event = from_http(request["headers"], request["body"])
    return {"attributes": dict(event.get_attributes()), "data": event.get_data()}


def oauth2(request):
    host, token = request["host"], request["access_token"]
    client = OAuth2Session()
    exchange = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "requested_subject": request["user"],
    }
    issued = client.fetch_token(host + "/oauth2/token", **exchange)
    # Introspection is for the host's own callers: they present their access token.
    caller = {"Authorization": "Bearer " + token}

    def introspect():
        return client.introspect_token(
            host + "/oauth2/introspect", token=issued["access_token"], headers=caller
        ).json()

    before = introspect()
    revoked = client.revoke_token(
        host + "/oauth2/revoke", token=issued["access_token"], token_type_hint="access_token"
    )
    after = introspect()
    try:
        client.fetch_token(host + "/oauth2/token", **dict(exchange, subject_token="not-a-token"))
        refused = None
    except OAuthError as error:
        refused = {"error": error.error, "description": error.description}
    return {
        "issued": dict(issued),
        "introspected": before,
        "revoke_status": revoked.status_code,
        "introspected_after_revoke": after,
        "refused": refused,
    }


CHECKS = {
    "totp": totp,
    "standard-webhooks": standard_webhooks,
    "cloudevents": cloudevents,
    "oauth2": oauth2,
}

if __name__ == "__main__":
    request = json.load(sys.stdin)
    json.dump(CHECKS[request["check"]](request), sys.stdout, default=str)
