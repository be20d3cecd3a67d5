"""Request bodies that refuse unknown fields say so in the OpenAPI document.

Litestar documents a msgspec Struct without its ``forbid_unknown_fields``, so the document let
clients send extra fields that the service answers with 422 (schemathesis found it: schema-valid
bodies refused). This plugin runs before Litestar's own Struct plugin and adds
``additionalProperties: false`` to those structs' schemas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

# Not re-exported by Litestar 2; the class every msgspec Struct schema comes from (litestar<3 is pinned).
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition


class StrictStructSchemaPlugin(StructSchemaPlugin):
    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            schema.additional_properties = False
        return schema
