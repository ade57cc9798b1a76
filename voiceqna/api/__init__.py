"""The REST API (the seed's contract, and streamed turns): `create_api(service, settings)`.

routes.py  the routes over the service     schemas.py  bodies and conversions
bodies.py  reading bodies within limits    errors.py   failures as JSON with their status
auth.py    the API key                     stream.py   a turn's events as Server-Sent Events
"""

from voiceqna.api.routes import create_api

__all__ = ["create_api"]
