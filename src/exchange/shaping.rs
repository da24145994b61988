//! Request shaping: what the edge sends upstream in place of what the client sent — the query
//! re-encoded canonically within the mapping and the upstream's contract, the body validated,
//! mapped and re-encoded — or the answer it gives itself when nothing upstream could change it.

use super::*;
use crate::http::{is_scim_json, Method};
use crate::mapping::Policy;
use crate::route::Endpoint;
use crate::scim::normalisation::Normalisation;
use crate::scim::patch::prepare_patch;
use crate::scim::query::parse_query;
use crate::scim::resource::prepare_resource;
use crate::scim::search::{prepare_search, search_request};
use crate::scim_error::ScimType;
use crate::upstream::FORWARDED_REQUEST_HEADERS;

/// The checks and shaping that need only the headers of a routed request: its query as sent
/// upstream, its declared size and media type, the headers forwarded, where its URLs point.
pub(super) fn shape_headers(config: &Config, host: &dyn Host, mut route: Route) -> Result<Pending, ScimError> {
    let mut changes = Changes::default();
    if route.endpoint == Endpoint::Search(None) {
        let mapping = &config.mapping;
        mapping.users.contract.root_search(route.endpoint.label())?;
        // Its answer mixes resource types, each stripped by its own mapping: rather than trust
        // each resource to say what it is, a root search is not served when either strips.
        if !(mapping.users.strips_nothing && mapping.groups.strips_nothing) {
            return Err(ScimError::new(
                501,
                "/.search is not served while the mapping removes attributes: search /Users/.search or /Groups/.search",
            ));
        }
    }
    let (query, projection) = canonical_query(config, &route, &mut changes)?;
    let matches_nothing = query.is_none();
    route.query = query.unwrap_or_default();

    let content_length = header_text(host, "content-length").and_then(|v| v.parse::<u64>().ok());
    if content_length.is_some_and(|n| n > config.max_body_bytes as u64) {
        return Err(too_large(config.max_body_bytes));
    }
    if route.method.carries_body() && !header_text(host, "content-type").is_some_and(|ct| is_scim_json(&ct)) {
        return Err(ScimError::new(
            415,
            "SCIM request bodies must be sent as 'Content-Type: application/scim+json' (RFC 7644 §8.1)",
        ));
    }
    let mut forwarded = Vec::new();
    for &name in FORWARDED_REQUEST_HEADERS {
        if let Some(value) = header_text(host, name) {
            forwarded.push((name.to_string(), value));
        }
    }
    // Never from :authority or X-Forwarded-*: the client chooses those.
    let public = config.public_base.clone();
    Ok(Pending { route, forwarded, public, changes, matches_nothing, projection })
}

/// What to do with a request once its body is in: answer it at the edge (a query that can match
/// nothing, a discovery endpoint) or send upstream the body [`prepare_body`] shapes.
pub(super) fn plan(
    config: &Config,
    route: &mut Route,
    public: &PublicBase,
    projection: &mut Projection,
    matches_nothing: bool,
    body: &[u8],
    changes: &mut Changes,
) -> Result<Planned, ScimError> {
    if matches_nothing {
        Ok(Planned::Answer(empty_list()))
    } else if let Endpoint::Discovery(endpoint, id) = &route.endpoint {
        // RFC 7644 §4: answered by the edge, which describes itself; nothing goes upstream.
        crate::discovery::answer(config, public, *endpoint, id.as_deref())
            .map(|document| Planned::Answer(Response::scim_json(200, &document)))
    } else {
        prepare_body(config, route, projection, body, changes)
    }
}

/// The query string as sent upstream: parsed against the endpoint's schema, restricted to the
/// mapping and to the upstream's contract, and re-encoded canonically (`None` when its filter can
/// match nothing the upstream stores); and the attribute selection left to the edge. Discovery
/// endpoints and `/.search` take no parameters.
pub(super) fn canonical_query(
    config: &Config,
    route: &Route,
    changes: &mut Changes,
) -> Result<(Option<String>, Projection), ScimError> {
    let resource_type = match &route.endpoint {
        Endpoint::Collection(rt) | Endpoint::Resource(rt, _) => Some(*rt),
        Endpoint::Discovery(..) | Endpoint::Search(_) => None,
    };
    let Some(resource_type) = resource_type else {
        if route.query.is_empty() {
            return Ok((Some(String::new()), Projection::default()));
        }
        let detail = format!("/{} takes no query parameters", route.endpoint.label());
        return Err(ScimError::bad_request(ScimType::InvalidValue, detail));
    };
    let policy = config.mapping.policy(resource_type);
    let collection = matches!(route.endpoint, Endpoint::Collection(_)) && route.method == Method::Get;
    let mut query = parse_query(&route.query, route.method, collection, policy.schema)?;
    if !policy.restrict_query(&mut query, changes) {
        return Ok((None, Projection::default()));
    }
    let projection = policy.contract.query(policy.resource_type(), &mut query);
    query.cap_count();
    let canonical = query.to_query_string();
    if canonical != route.query {
        changes.note(Normalisation::QueryReencoded);
    }
    Ok((Some(canonical), projection))
}

/// What to do with a request once its body is prepared.
pub(super) enum Planned {
    /// Call the upstream with this body (or none).
    Forward(Option<Vec<u8>>),
    /// Answer at the edge: nothing the upstream would do could change the answer.
    Answer(Response),
}

/// The body as sent upstream: a validated, canonical, mapped resource (POST, PUT), PatchOp
/// (PATCH) or SearchRequest (POST .search); nothing for the other methods.
pub(super) fn prepare_body(
    config: &Config,
    route: &mut Route,
    projection: &mut Projection,
    body: &[u8],
    changes: &mut Changes,
) -> Result<Planned, ScimError> {
    let mapping = &config.mapping;
    let prepared = match (&route.endpoint, route.method) {
        (Endpoint::Collection(rt), Method::Post) => {
            prepare_resource(mapping.policy(*rt), Method::Post, None, body, changes)?
        }
        (Endpoint::Resource(rt, id), Method::Put) => {
            prepare_resource(mapping.policy(*rt), Method::Put, Some(id), body, changes)?
        }
        (Endpoint::Resource(rt, _), Method::Patch) => match prepare_patch(mapping.policy(*rt), body, changes)? {
            Some(patch) => patch,
            // RFC 7644 §3.5.2: 204 when the server returns no resource.
            None => return Ok(Planned::Answer(Response { status: 204, headers: Vec::new(), body: Vec::new() })),
        },
        (Endpoint::Search(rt), Method::Post) => {
            let policies: Vec<&Policy> = match rt {
                Some(rt) => vec![mapping.policy(*rt)],
                None => vec![&mapping.users, &mapping.groups],
            };
            let Some((mut query, policy)) = prepare_search(&policies, body, changes)? else {
                return Ok(Planned::Answer(empty_list()));
            };
            if policy.contract.search_as_get() {
                // Omni's API has no .search: the same query as the GET it is equivalent to
                // (RFC 7644 §3.4.3).
                *projection = policy.contract.query(policy.resource_type(), &mut query);
                route.method = Method::Get;
                route.endpoint = Endpoint::Collection(policy.resource_type());
                route.query = query.to_query_string();
                return Ok(Planned::Forward(None));
            }
            search_request(&query)
        }
        _ => return Ok(Planned::Forward(None)),
    };
    let mut forwarded = Vec::with_capacity(body.len());
    serde_json::to_writer(&mut forwarded, &prepared)
        .map(|()| Planned::Forward(Some(forwarded)))
        .map_err(|_| ScimError::bad_request(ScimType::InvalidValue, "The request body could not be re-encoded"))
}

/// An empty ListResponse (RFC 7644 §3.4.2), for queries that can match nothing.
pub(super) fn empty_list() -> Response {
    // The same bytes serde_json writes for this document (its members in key order).
    const BODY: &str = r#"{"Resources":[],"itemsPerPage":0,"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"startIndex":1,"totalResults":0}"#;
    Response {
        status: 200,
        headers: vec![("content-type".to_string(), crate::http::SCIM_MEDIA_TYPE.to_string())],
        body: BODY.as_bytes().to_vec(),
    }
}
