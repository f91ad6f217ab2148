"""Personal console logins: created, changed and revoked by an admin of the organization.

The password is hashed with scrypt (:mod:`courier.core.passwords`) and never shown or kept;
revoking keeps the row (the audit log names its person) and ends the login's open sessions,
as a new password does.
"""

from __future__ import annotations

import asyncio
import uuid

from courier.core.errors import conflict, not_found, unprocessable
from courier.core.passwords import hash_password
from courier.core.time import utcnow
from courier.domains.console_users import repository as repo
from courier.domains.console_users.schemas import ConsoleUserCreate, ConsoleUserUpdate
from courier.jsonapi.changes import Changed
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.console_user import ConsoleUser


class ConsoleUserService(CrudService[ConsoleUser]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[ConsoleUser]:
        assert isinstance(attrs, ConsoleUserCreate)
        if attrs.organization_id is not None and attrs.organization_id != ctx.organization_id:
            raise not_found("organization")
        person = await repo.individual(ctx.session, ctx.organization_id, attrs.individual_id)
        if person is None:
            raise not_found("individual")
        if person.account_type == repo.PATIENT:
            raise unprocessable(
                "individual-id must name a provider individual (a care-team member), not a "
                "participant",
                "not-a-provider",
            )
        if await repo.username_taken(ctx.session, attrs.username):
            raise conflict(
                "this user name is taken", "duplicate-username", "/data/attributes/username"
            )
        user = ConsoleUser(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            username=attrs.username,
            username_key=repo.username_key(attrs.username),
            individual_id=attrs.individual_id,
            role=attrs.role,
            password_hash=await asyncio.to_thread(hash_password, attrs.password),
            created_by=ctx.principal.actor_id,
        )
        ctx.session.add(user)
        return self.changed(ctx, "created", user, attrs.model_fields_set - {"password"})

    async def update(
        self, ctx: Context, obj: ConsoleUser, attrs: WriteAttributes
    ) -> Changed[ConsoleUser]:
        assert isinstance(attrs, ConsoleUserUpdate)
        given = attrs.given()
        fields = []
        if given.get("role") is not None and given["role"] != obj.role:
            obj.role = given["role"]
            fields.append("role")
        if given.get("password") is not None:
            obj.password_hash = await asyncio.to_thread(hash_password, given["password"])
            await repo.end_sessions(ctx.session, obj)
            fields.append("password")  # the name only, as for every audited field
        if not fields:
            return Changed(obj)
        return self.changed(ctx, "updated", obj, fields)

    async def delete(self, ctx: Context, obj: ConsoleUser) -> None:
        """Revoking keeps the row; the login stops working at once, its sessions end."""
        if obj.revoked_at is None:
            obj.revoked_at = utcnow()
        await repo.end_sessions(ctx.session, obj)
