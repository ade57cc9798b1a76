"""The container's health check: exit 0 when the app answers /health (API only) or /api/health (with the page)."""

import os
import sys
import urllib.request

PORT = os.environ.get("PORT") or "7860"


def healthy(path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}", timeout=4) as response:
            return response.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(0 if healthy("/health") or healthy("/api/health") else 1)
