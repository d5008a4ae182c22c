"""What the OpenAPI document and /docs promise, checked on the live services."""

from __future__ import annotations

import httpx

from tests.openapi.conftest import Platform


def test_docs_are_served_without_a_cdn(platform: Platform) -> None:
    for url in platform.urls.values():
        html = httpx.get(f"{url}/docs").text
        assert "cdn.jsdelivr.net" not in html and "unpkg" not in html
        assert "/static/shared/swagger-ui/swagger-ui-bundle.js" in html
        js = httpx.get(f"{url}/static/shared/swagger-ui/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        assert httpx.get(f"{url}/static/shared/swagger-ui/swagger-ui.css").status_code == 200


def test_security_scheme_and_problem_responses(platform: Platform) -> None:
    doc = httpx.get(f"{platform.urls['catalog']}/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    create = doc["paths"]["/v1/patents"]["post"]
    assert create["security"] == [{"bearerAuth": []}]
    for status in ("400", "401", "403", "404", "409", "413", "415", "422", "503"):
        content = create["responses"][status]["content"]
        assert list(content) == ["application/problem+json"], status
    public = doc["paths"]["/v1/patents"]["get"]
    assert "security" not in public and "401" not in public["responses"]
    upload = doc["paths"]["/v1/patents/bulk"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    matching = httpx.get(f"{platform.urls['matching']}/openapi.json").json()
    need = matching["paths"]["/v1/needs/{need_id}"]["get"]
    assert need["security"] == [{"bearerAuth": []}, {}]  # a key is optional there


def test_undeclared_method_is_405_with_every_allowed_method(platform: Platform) -> None:
    r = httpx.request("TRACE", f"{platform.urls['catalog']}/v1/listings/1")
    assert r.status_code == 405
    assert r.headers["content-type"] == "application/problem+json"
    assert set(r.headers["allow"].split(", ")) >= {"GET", "PATCH"}


def test_sqlite_timestamps_carry_their_offset(platform: Platform) -> None:
    page = httpx.get(f"{platform.urls['catalog']}/v1/listings").json()
    stamp = page["items"][0]["first_listed_at"]
    assert stamp.endswith(("Z", "+00:00")), stamp


def test_document_states_what_the_guards_and_ops_routes_do(platform: Platform) -> None:
    doc = httpx.get(f"{platform.urls['catalog']}/openapi.json").json()
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    # shared.guards refuses a NUL in any string or key: every free string says so.
    person = doc["components"]["schemas"]["PersonCreate"]
    assert person["properties"]["name"]["pattern"] == "^[^\\x00]*$"
    assert person["propertyNames"] == {"pattern": "^[^\\x00]*$"}
    assert person["additionalProperties"] == {"$ref": "#/components/schemas/JsonValue"}
    after = next(p for p in doc["paths"]["/v1/feed"]["get"]["parameters"] if p["name"] == "after")
    assert "422" in after["description"]
