"""The WhatsApp webhook: Meta's verification handshake, and signed notifications."""

import hashlib
import hmac
import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .tasks import send_fixtures


def signature_ok(body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256: sha256=HMAC(app secret, raw body)."""
    if not header or not header.startswith("sha256="):
        return False
    key = settings.WHATSAPP_APP_SECRET.encode()
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


@csrf_exempt
def webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        params = request.GET
        if (
            params.get("hub.mode") == "subscribe"
            and params.get("hub.verify_token") == settings.WHATSAPP_VERIFY_TOKEN
        ):
            return HttpResponse(params.get("hub.challenge", ""))
        return HttpResponse(status=403)
    if request.method != "POST":
        return HttpResponse(status=405)
    if not signature_ok(request.body, request.headers.get("X-Hub-Signature-256")):
        return HttpResponse("Invalid signature", status=403)
    payload = json.loads(request.body)
    for entry in payload.get("entry", []):
        for change in entry.get("changes", []):
            for message in change.get("value", {}).get("messages", []):
                text = message.get("text", {}).get("body", "")
                if (
                    message.get("type") == "text"
                    and text.strip().lower() == settings.FIXTURES_KEYWORD
                ):
                    send_fixtures(message["from"])
    return HttpResponse("ok")  # statuses and other texts: acknowledged, nothing to do
