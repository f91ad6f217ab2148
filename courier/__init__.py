"""Courier: a self-hostable patient-communications platform."""

import warnings

from pydantic import BaseModel
from pydantic.warnings import UnsupportedFieldAttributeWarning

__version__ = "0.1.0"

# Every pydantic model (Courier's ~700, and those of the libraries imported after this line)
# builds its validator and serializer on first use instead of at class creation: a process
# uses few of them (a server worker, those of the routes it is asked for; FastAPI's
# per-route adapters of a deferred model are deferred too), and built they cost ~7 MB.
# Validation and schemas are the same, built once, later (issue 17, memory).
BaseModel.model_config["defer_build"] = True
# FastAPI builds a body parameter's adapter from ``Annotated[Model, Field(alias=<parameter>)]``
# and silences pydantic's warning that such an alias does nothing while it builds it; deferred,
# the adapter is built on the first request, outside that silence: the same warning, silenced.
warnings.filterwarnings(
    "ignore",
    message=r"The 'alias' attribute with value '\w+' was provided to the `Field\(\)` function",
    category=UnsupportedFieldAttributeWarning,
)
