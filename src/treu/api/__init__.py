"""The HTTP API (FastAPI): thin — authenticate, parse, call one service, shape the answer.

``create_app`` in :mod:`treu.api.app` builds it; ``treu serve`` runs it under uvicorn.
"""
