"""Checks what the host hands out with independent implementations.

Reads one JSON request on stdin, writes one JSON answer on stdout; a check that fails
raises, so the process exits non-zero with the library's own error on stderr.

  {"check": "totp", "uri": "otpauth://..."}
      -> {"code": "123456"}                  pyotp's current code for the URI
  {"check": "standard-webhooks", "secret": "whsec_...", "headers": {...}, "body": "..."}
      -> {"payload": ...}                    the body, once standardwebhooks verified it
  {"check": "cloudevents", "headers": {...}, "body": "..."}
      -> {"attributes": {...}, "data": ...}  the event the CloudEvents SDK read
"""

import json
import sys

import pyotp
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


CHECKS = {"totp": totp, "standard-webhooks": standard_webhooks, "cloudevents": cloudevents}

if __name__ == "__main__":
    request = json.load(sys.stdin)
    json.dump(CHECKS[request["check"]](request), sys.stdout, default=str)
