"""The console's patient screens: the patient timeline (screen 4) and templates (screen 9)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
