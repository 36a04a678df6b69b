"""The staggered reply: each part its own task, queued at once with a countdown."""

import httpx
from celery import shared_task
from django.conf import settings


def send_fixtures(recipient: str) -> None:
    """Queue every part now; part n is due n * FIXTURES_SPACING_S seconds from now."""
    parts = settings.FIXTURES_PARTS
    for seq in range(parts):
        send_part.apply_async(
            args=[recipient, seq, parts], countdown=seq * settings.FIXTURES_SPACING_S
        )


@shared_task(bind=True, max_retries=3, default_retry_delay=1)
def send_part(self, recipient: str, seq: int, parts: int) -> str:
    """POST one text to the Cloud API; a transport error or a 5xx is retried."""
    url = (
        f"{settings.WHATSAPP_API_URL.rstrip('/')}/{settings.WHATSAPP_API_VERSION}/"
        f"{settings.WHATSAPP_PHONE_NUMBER_ID}/messages"
    )
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": recipient,
        "type": "text",
        "text": {"preview_url": False, "body": f"Fixtures, part {seq + 1} of {parts}"},
    }
    headers = {"Authorization": f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}"}
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise self.retry(exc=exc) from exc
    if response.status_code >= 500:
        raise self.retry(exc=RuntimeError(f"Cloud API answered {response.status_code}"))
    response.raise_for_status()
    return response.json()["messages"][0]["id"]
