"""simple-salesforce, unchanged, against the Salesforce emulator (over TLS, as it insists).

Env: SF_INSTANCE (https://127.0.0.1:PORT), SF_TOKEN, SF_CA (PEM to trust). The emulator is
seeded with 450 contacts and pages SOQL results 200 at a time.
"""
import json
import os
import sys

import requests
from simple_salesforce import Salesforce, SalesforceMalformedRequest, SalesforceResourceNotFound

session = requests.Session()
session.verify = os.environ["SF_CA"]
sf = Salesforce(instance_url=os.environ["SF_INSTANCE"], session_id=os.environ["SF_TOKEN"], version="59.0", session=session)

# query with paging: query_all follows nextRecordsUrl (a relative path) to the end.
result = sf.query_all("SELECT Id, Email, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id")
assert result["totalSize"] == 450, result["totalSize"]
assert len(result["records"]) == 450, len(result["records"])
first = sf.query("SELECT Id FROM Contact")
assert first["done"] is False and first["nextRecordsUrl"].startswith("/services/data/v59.0/query/"), first.get("nextRecordsUrl")
more = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
assert len(more["records"]) == 200

# describe
describe = sf.Contact.describe()
email = next(f for f in describe["fields"] if f["name"] == "Email")
assert email["idLookup"] is True and email["externalId"] is False, email
assert any(f["name"] == "External_Id__c" and f["externalId"] for f in describe["fields"])

# create, get, upsert by external id, get by custom id
created = sf.Contact.create({"LastName": "Client", "Email": "client@example.com", "External_Id__c": "ext-1"})
assert created["success"] is True, created
status = sf.Contact.upsert("External_Id__c/ext-1", {"Title": "Upserted"})
assert status in (200, 204), status
status = sf.Contact.upsert("External_Id__c/ext-2", {"LastName": "Second"})
assert status == 201, status
by_key = sf.Contact.get_by_custom_id("External_Id__c", "ext-1")
assert by_key["Title"] == "Upserted", by_key
record = sf.Contact.get(created["id"])
assert record["Email"] == "client@example.com"

# errors surface as the client's own exception types
try:
    sf.query("SELECT FROM Contact")
    raise SystemExit("a malformed query did not fail")
except SalesforceMalformedRequest as e:
    assert e.content[0]["errorCode"] == "MALFORMED_QUERY", e.content
try:
    sf.Contact.get("003000000000000AAA")
    raise SystemExit("a missing record did not 404")
except SalesforceResourceNotFound:
    pass

# sObject Collections through the client's generic REST call
body = {"allOrNone": False, "records": [
    {"attributes": {"type": "Contact"}, "LastName": "Coll1"},
    {"attributes": {"type": "Contact"}, "FirstName": "MissingLast"},
]}
results = sf.restful("composite/sobjects", method="POST", data=json.dumps(body))
assert results[0]["success"] is True and results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING", results
upserted = sf.restful("composite/sobjects/Contact/External_Id__c", method="PATCH", data=json.dumps(
    {"records": [{"attributes": {"type": "Contact"}, "External_Id__c": "ext-1", "Title": "Coll"}]}))
assert upserted[0]["created"] is False, upserted

# api usage is parsed from Sforce-Limit-Info
assert sf.api_usage, "simple-salesforce did not parse Sforce-Limit-Info"

# Bulk API 2.0 through the client's own job handling (create, upload, close, poll, results).
loaded = sf.bulk2.Contact.insert(
    records=[{"LastName": "Bulk One", "Email": "one@bulk.example"}, {"LastName": "Bulk Two", "Email": "two@bulk.example"}],
    wait=0,
)
assert loaded[0]["numberRecordsProcessed"] == 2 and loaded[0]["numberRecordsFailed"] == 0, loaded
pages = list(sf.bulk2.Contact.query("SELECT LastName FROM Contact WHERE Email LIKE '%@bulk.example' ORDER BY LastName",
                                    max_records=1, wait=0))
assert len(pages) == 2 and pages[0].splitlines()[0] == '"LastName"', pages
assert [p.splitlines()[1] for p in pages] == ['"Bulk One"', '"Bulk Two"'], pages

print("simple-salesforce: all checks passed")
sys.exit(0)
