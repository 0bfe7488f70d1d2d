"""hubspot-api-client, unchanged (with client-side validation on), against the HubSpot emulator.

Env: HS_BASE (http://127.0.0.1:PORT), HS_CODE (an authorization code for HS_REDIRECT),
HS_REDIRECT. The emulator is seeded with 250 contacts.
"""
import os
import sys

import hubspot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectBatchInputForCreate,
)

base = os.environ["HS_BASE"]
client = hubspot.Client.create(host=base, client_side_validation=True)

# OAuth: code exchange and refresh through the client's own token API.
tokens = client.oauth.tokens_api.create(
    grant_type="authorization_code", code=os.environ["HS_CODE"], redirect_uri=os.environ["HS_REDIRECT"],
    client_id="crm-sim-client", client_secret="crm-sim-secret")
assert tokens.expires_in == 1800 and tokens.token_type == "bearer", tokens
refreshed = client.oauth.tokens_api.create(
    grant_type="refresh_token", refresh_token=tokens.refresh_token,
    client_id="crm-sim-client", client_secret="crm-sim-secret")
assert refreshed.refresh_token == tokens.refresh_token and refreshed.access_token != tokens.access_token

client = hubspot.Client.create(access_token=refreshed.access_token, host=base, client_side_validation=True)

# get_all pages through `after` to the end.
everyone = client.crm.contacts.get_all(properties=["email", "firstname"])
assert len(everyone) == 250, len(everyone)
assert len({c.id for c in everyone}) == 250
assert everyone[0].properties["email"].endswith("@example.com")

# batch create, upsert (by email) and read
created = client.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
    SimplePublicObjectBatchInputForCreate(properties={"email": "py1@example.com", "firstname": "Py"}),
    SimplePublicObjectBatchInputForCreate(properties={"email": "py2@example.com"}),
]))
assert len(created.results) == 2 and created.status == "COMPLETE", created
upserted = client.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
    SimplePublicObjectBatchInputUpsert(id="py1@example.com", id_property="email", properties={"firstname": "Updated"}),
    SimplePublicObjectBatchInputUpsert(id="py3@example.com", id_property="email", properties={"firstname": "New"}),
]))
assert sorted(r.new for r in upserted.results) == [False, True], upserted
read = client.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
    properties=["firstname"], id_property="email", inputs=[SimplePublicObjectId(id="py1@example.com")]))
assert read.results[0].properties["firstname"] == "Updated", read

# search
request = PublicObjectSearchRequest(
    filter_groups=[FilterGroup(filters=[Filter(property_name="email", operator="EQ", value="py3@example.com")])],
    properties=["email", "firstname"], limit=10)
found = client.crm.contacts.search_api.do_search(public_object_search_request=request)
assert found.total == 1 and found.results[0].properties["firstname"] == "New", found

# properties
props = client.crm.properties.core_api.get_all(object_type="contacts")
email = next(p for p in props.results if p.name == "email")
assert email.has_unique_value is True, email

print("hubspot-api-client: all checks passed")
sys.exit(0)
