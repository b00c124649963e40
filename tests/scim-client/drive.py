"""Drives a SCIM 2.0 service provider with scim2-client, a SCIM client
that no one in this project wrote, which checks every answer against the
schemas the service provider publishes: discovery, then a User's and a
Group's whole life. Prints one JSON object of what it saw, and exits
non-zero at the first answer the client refuses.

Usage: drive.py BASE_URL TOKEN
"""

import json
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import (
    Email,
    EnterpriseUser,
    Group,
    GroupMember,
    Name,
    PatchOp,
    PatchOperation,
    User,
)


def main() -> None:
    base, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    scim = SyncSCIMClient(http)
    scim.discover()
    UserModel = User[EnterpriseUser]
    seen = {"resource_types": sorted(t.id for t in scim.provider.resource_types)}

    ada = UserModel(
        user_name="ada@example.com",
        name=Name(given_name="Ada", family_name="Lovelace"),
        emails=[Email(value="ada@example.com", type="work", primary=True)],
        title="Engineer",
        active=True,
    )
    ada[EnterpriseUser] = EnterpriseUser(department="Research")
    created = scim.create(ada)
    seen["created"] = {"id": created.id, "version": created.meta.version}

    found = scim.query(UserModel, query_parameters={"filter": 'userName eq "ADA@example.com"'})
    seen["found"] = [u.id for u in found.resources or []]

    created.title = "Countess"
    replaced = scim.replace(created)
    seen["replaced_title"] = replaced.title

    patch = PatchOp[UserModel](
        operations=[
            PatchOperation[UserModel](op=PatchOperation.Op.replace_, path="active", value=False)
        ]
    )
    scim.modify(UserModel, created.id, patch)
    seen["active_after_patch"] = scim.query(UserModel, created.id).active

    group = scim.create(
        Group(display_name="Analysts", members=[GroupMember(value=created.id)])
    )
    seen["group_members"] = [m.value for m in group.members or []]
    seen["user_groups"] = [g.display for g in scim.query(UserModel, created.id).groups or []]
    scim.delete(Group, group.id)
    scim.delete(UserModel, created.id)
    left = scim.query(UserModel)
    seen["left"] = left.total_results
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
