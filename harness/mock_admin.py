"""A client for a running mock's `/_mock` admin routes: journal, behaviours, reset, health."""

from __future__ import annotations

from typing import Any

import httpx


class MockAdmin:
    """The admin side of one mock server (loopback)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> MockAdmin:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _json(self, answer: httpx.Response) -> Any:
        if answer.is_error:
            raise RuntimeError(
                f"mock admin {answer.request.method} {answer.request.url.path}: "
                f"HTTP {answer.status_code}: {answer.text}"
            )
        return answer.json()

    def health(self) -> dict[str, Any]:
        return self._json(self.http.get("/_mock/health"))

    def journal(self, timeout_s: float | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Entries matching `filters`; `timeout_s` overrides the client's for this read."""
        timeout = self.http.timeout if timeout_s is None else httpx.Timeout(timeout_s)
        answer = self.http.get("/_mock/journal", params=filters, timeout=timeout)
        return self._json(answer)["entries"]

    def get_behaviours(self) -> dict[str, Any]:
        return self._json(self.http.get("/_mock/behaviours"))

    def put_behaviours(self, behaviours: dict[str, Any]) -> dict[str, Any]:
        """Replace all behaviours (unset sections go back to their defaults)."""
        return self._json(self.http.put("/_mock/behaviours", json=behaviours))

    def patch_behaviours(self, sections: dict[str, Any]) -> dict[str, Any]:
        """Replace only the given top-level sections."""
        return self._json(self.http.patch("/_mock/behaviours", json=sections))

    def reset(self) -> None:
        self._json(self.http.post("/_mock/reset"))
